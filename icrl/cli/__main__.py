"""`python -m icrl.cli ...` is the same as the `icrl` command."""

from icrl.cli import main

main()
