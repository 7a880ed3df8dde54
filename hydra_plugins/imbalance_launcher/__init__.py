"""Hydra launcher plugins of the imbalance project (Hydra finds plugins under hydra_plugins)."""
