"""One module per sub-command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler=<callable(args) -> int>`` through ``set_defaults``. The CLI discovers the
modules, so adding a command never edits a shared file. Modules import their heavy
dependencies inside the handler: ``--help`` stays fast and one command's import
problem cannot break the others.
"""
