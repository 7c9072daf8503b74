"""The ``hwgen`` command line: a thin layer over the packages, one module per command."""
