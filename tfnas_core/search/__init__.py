"""How TF-NAS searches (Sec. 3, Appendix B): the samplers and bi-sampling (``samplers``), the
latency objectives of Eq. 9 and Table 5 (``objectives``), elasticity scaling, Alg. 1 (``scaling``),
the search settings (``config``), its 80/20 data (``data``), the steps - weight, architecture,
validation, elasticity - (``steps``), the loop that runs them (``loop``) and CUDA graphs for the
steps (``cuda_graph``)."""
