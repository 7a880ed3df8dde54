"""Everything MLflow: the store location, one run per episode, batched logging, traces.

Every module of the project that touches MLflow imports it through this package, so these
defaults are set before MLflow reads them (users can still override each variable).
"""

import os

# MLflow logs its database migrations at INFO; the episode account is what users read.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# Offline: for LLM spans MLflow would fetch a model-pricing catalog from the network and
# stall about 7 s before giving up; "" selects the bundled catalog.
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
# No progress bars from artifact downloads (replay, rerun) in the terminal account.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# The episode account already ends with the run id and how to browse it; MLflow's own
# "View run at <tracking URI>" lines would repeat it, unmasked (a URI may hold a password).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
