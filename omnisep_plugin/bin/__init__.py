"""Command-line interface (``omnisep``, ``omnisep-prepare``, ``omnisep-embed``)."""
