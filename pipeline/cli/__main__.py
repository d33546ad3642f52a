"""``python -m pipeline.cli``: the ewarn command without relying on the console script."""

from pipeline.cli import main

main()
