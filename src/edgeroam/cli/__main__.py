"""`python -m edgeroam.cli` — the same as the `edgeroam` command."""

from edgeroam.cli import main

main()
