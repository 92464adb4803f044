"""Environment defaults for MLflow, set by the CLI before MLflow is imported (no imports here)."""

# MLflow retries a failing HTTP request 7 times with backoff factor 2 (minutes of silence when the
# server is down). Ours, unless the user sets them: 3 retries, backoff 1 s (about 7 s of sleeps),
# 30 s per request. Set before MLflow is imported (the CLI does) so that trials inherit them.
HTTP_RETRY_BUDGET = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                     "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}

# MLflow draws a tqdm progress bar on stderr for every artifact download: one per run in `lottery
# records export` and the report. Off unless the user sets it.
QUIET_DOWNLOADS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
