"""The `image-embed` command-line tool (cli/app.py) and the tools it runs, one module each."""
