"""The ``emovox`` command: a thin shell over the Python API.

One module per command; a new command is one new module (with ``COMMAND``, or ``COMMANDS``) and
one line in :data:`COMMAND_MODULES`. What the commands share (option groups, ``KEY=VALUE``
parsing, corpus specs, the recipe) is in :mod:`emovox.apps.cli.options`.
"""

from __future__ import annotations

import importlib
import warnings

import click

from emovox._version import __version__
from emovox.apps.cli.options import Main

COMMAND_MODULES = (
    "data",
    "train",
    "evaluate",
    "predict",
    "export",
    "models",
    "fuse",
    "encoder",
    "plot",
    "demo",
    "live",
    "serve",
)
"""The modules of :mod:`emovox.apps.cli` that hold the commands, in ``--help`` order."""


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emovox")
def main() -> None:
    """emovox: speech emotion recognition — train, evaluate honestly, predict."""
    warnings.filterwarnings("default", module="emovox")


for _name in COMMAND_MODULES:
    _module = importlib.import_module(f"emovox.apps.cli.{_name}")
    for _command in getattr(_module, "COMMANDS", None) or [_module.COMMAND]:
        main.add_command(_command)


if __name__ == "__main__":
    main()
