"""The evidence: the claims of the paper and their verdicts (``claims``), the paper's numbers
(``paper_tables``) and the figures (``plots``)."""
