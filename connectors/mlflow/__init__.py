"""MLflow: where the tracking store is, which model version is champion, how models are logged.

Every ``mlflow`` import in here is inside a function so that importing this package (and so
``spymaster --help``) stays fast.
"""

from connectors.mlflow.tracking import ModelVersionRef, champion_version, configure, tracking_uri, use_experiment

__all__ = ["ModelVersionRef", "champion_version", "configure", "tracking_uri", "use_experiment"]
