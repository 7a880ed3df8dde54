"""Everything MLflow: the store location, one run per episode, batched logging."""
