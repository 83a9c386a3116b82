"""The command line: thin click commands over the library (the library never imports this package)."""

from allocator.cli.main import main

__all__ = ["main"]
