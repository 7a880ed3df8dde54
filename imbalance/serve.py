"""`python -m imbalance.serve`: the environment as an OpenEnv server (imbalance/cli/serve.py)."""

from imbalance.cli.serve import cli

if __name__ == "__main__":
    cli()
