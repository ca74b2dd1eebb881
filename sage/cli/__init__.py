"""The `sage` command line: `main` wires one module per subcommand (`sage/cli/<name>.py`)."""

from sage.cli.app import main

__all__ = ["main"]
