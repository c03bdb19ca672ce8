"""The command line, ``python -m tfnas_core``: the parser and commands (``main``) with its data,
model, search and train commands, and the entry the Makefile calls (``make_entry``)."""
