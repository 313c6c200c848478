"""Type stubs for the native module ``frontrun._engine`` (hand-written)."""

__version__: str
