"""``python -m hwgen``: the same as the ``hwgen`` command."""

from hwgen.cli.main import main

main()
