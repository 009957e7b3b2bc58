"""The package's version (the affinity release it was written against)."""

__version__ = "0.1.0"
