"""Ray Tune sweeps over pipelines: grid or Optuna, MLflow parent/child runs, resume, clusters."""
