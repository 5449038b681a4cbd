"""unspin: catch machine-spun text and undo it."""
__version__ = "0.1.0"
