"""The released TF-NAS models: reading the original checkpoints and configs (``official``),
evaluating them (``evaluate``) and exporting them (``export``)."""
