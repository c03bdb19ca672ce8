"""Datasets for retraining and search: ImageNet(-100) on disk, its checks and the entry point
(``datasets``), and Fashion-MNIST and synthetic data held in memory (``in_memory``)."""
