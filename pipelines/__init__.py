"""The paper's experiments as MLflow-tracked runs, the report and the `lottery` command."""
