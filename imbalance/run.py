"""`python -m imbalance.run`: one episode, or a sweep with -m (imbalance/cli/run.py)."""

from imbalance.cli.run import cli

if __name__ == "__main__":
    cli()
