"""The evidence: the claims of the paper (``claims``), the checks and rules that give their verdicts
(``verdicts``), the report as markdown (``render``) and its forest plot (``forest``), the paper's
numbers (``paper_tables``) and the notebooks' figures (``plots``)."""
