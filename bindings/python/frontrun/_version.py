"""The package version, taken from the native module so both always agree."""

from frontrun._engine import __version__

__all__ = ["__version__"]
