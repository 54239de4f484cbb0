"""The Python client library and the ``alliance`` CLI for alliance members."""
