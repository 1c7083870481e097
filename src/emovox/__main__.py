"""``python -m emovox``: the command line."""

from emovox.apps.cli import main

main()
