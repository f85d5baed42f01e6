"""Datasets (registry ``DATASETS``), landmark cache and joint transforms.

Importing this package registers every dataset: ``rafdb``, ``affectnet``, ``folder`` (file
datasets, also in ``CATALOGS`` for the landmarks CLI) and ``synthetic``.
"""

from fer_core.data import affectnet, folder, rafdb, synthetic  # noqa: F401  (register datasets)
from fer_core.data.base import CATALOGS, DATASETS, SPLITS, Catalog, Record, Sample, build_dataset

__all__ = ["CATALOGS", "DATASETS", "SPLITS", "Catalog", "Record", "Sample", "build_dataset"]
