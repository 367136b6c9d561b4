"""The command line (`loupe …` or `python cli.py …`): parses arguments and calls the core and review layers."""
