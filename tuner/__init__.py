"""Ray Tune orchestration of ``fer_core``: the sweep CLI, the trainable, MLflow tracking.

``python -m tuner.sweep --space lambda_layers`` runs the embedded default sweep;
``tuner.tracking.schema`` documents the MLflow schema every run follows.
"""
