"""`python cli.py …` runs Loupe's command line (commands/cli.py), which is also installed as the `loupe` command."""

from commands.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
