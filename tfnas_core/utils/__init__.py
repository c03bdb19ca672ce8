"""Small tools every wing uses: atomic writes (``atomic``), input checks (``checks``), progress
display (``progress``) and the repository root (``workspace``)."""
