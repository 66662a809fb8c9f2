"""`python -m cli ...`: the `image-embed` command without the console script."""

from cli.app import main

main()
