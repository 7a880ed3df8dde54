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
# MLflow's span processor writes an LLM episode's spans in batches of 5, each batch one store
# transaction that also reads the experiment back: 64 traced episodes cost 11.6 s of tracking
# CPU, against 7.1 s with up to 512 spans a write. Spans are still written at least every 5 s,
# and every trace is flushed when its episode ends (or, with many episodes in one process,
# when the sweep or the server does).
os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE", "512")
# No progress bars from artifact downloads (replay, rerun) in the terminal account.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# The episode account already ends with the run id and how to browse it; MLflow's own
# "View run at <tracking URI>" lines would repeat it, unmasked (a URI may hold a password).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
