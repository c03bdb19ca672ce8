"""tfnas_core: a clean, reproducible implementation of TF-NAS (ECCV 2020)."""

__version__ = "0.1.0"
