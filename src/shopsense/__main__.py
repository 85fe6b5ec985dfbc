"""``python -m shopsense`` runs the CLI (the same as the ``shopsense`` command)."""

from shopsense.cli.main import main

main()
