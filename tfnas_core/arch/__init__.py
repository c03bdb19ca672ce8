"""What is searched, as data (no torch): the search space of Tables 1 and 10 (``space``), an
architecture as a spec with its string form (``spec``), the published TF-NAS models of Tables 3-5
(``zoo``, specs in ``published/``) and random architectures (``random_arch``)."""
