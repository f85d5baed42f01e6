"""Cluster configs for sweeps at scale (Ray cluster launcher on AWS/GCP, KubeRay) and their checker.

``python -m tuner.cluster.check [FILES]`` validates them: the launcher YAMLs against the installed
Ray's autoscaler schema, the KubeRay manifests against the fields KubeRay needs, and all of them
against the project's own rules (shared storage, reachable MLflow, token auth, nothing public).
"""
