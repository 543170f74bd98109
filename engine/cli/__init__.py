"""The ``avatar`` command."""
