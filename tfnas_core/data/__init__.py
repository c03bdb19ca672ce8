"""Datasets for retraining and search: ImageNet(-100), Fashion-MNIST, CIFAR and synthetic data
(``datasets``)."""
