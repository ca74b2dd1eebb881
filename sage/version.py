"""The package version (its own module, so that library code need not import the `sage` package)."""

__version__ = "0.1.0"
