"""No test reaches the network: every test runs with socket connections refused (conftest.py)."""
import socket

import pytest


def test_network_is_refused_during_tests():
    with pytest.raises(RuntimeError, match="Network access attempted"):
        socket.create_connection(("127.0.0.1", 9))
