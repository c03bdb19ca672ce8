"""Runs on disk: the run key (``keys``), the run store (``store``), the committed archive
(``archive``), checkpoints (``checkpoint``), the resumable epoch loop (``loop``) and TensorBoard
logs (``tb_log``)."""
