import os
import socket

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The package's cache folder (text embeddings) is the session's, not the user's."""
    os.environ["OMNISEP_CACHE"] = str(tmp_path_factory.mktemp("omnisep_cache"))


@pytest.fixture(autouse=True)
def _seed_and_no_network(monkeypatch):
    """Every test is seeded and any attempt to open a network connection fails loudly."""
    torch.manual_seed(0)

    def _refuse(*args, **kwargs):
        raise RuntimeError("Network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)


@pytest.fixture(scope="session")
def encoder(tmp_path_factory):
    """A tiny random ImageBind (16-d, frozen): the query encoder of tests that need one."""
    from omnisep_plugin.query import ImageBindEncoder
    from omnisep_plugin.testing.dummies import save_tiny_imagebind_checkpoint

    path = tmp_path_factory.mktemp("ib") / "tiny.pth"
    save_tiny_imagebind_checkpoint(path)
    return ImageBindEncoder(path)
