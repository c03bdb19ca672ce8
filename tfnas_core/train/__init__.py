"""Retraining a searched or published architecture (Appendix B): its settings and profiles
(``config``) and the training loop (``retrain``)."""
