"""The package version, in a module of its own: any module may import it."""

__version__ = "0.1.0"
