"""modlife: lifetime recorder for CPython extension modules (command line and log tools)."""
