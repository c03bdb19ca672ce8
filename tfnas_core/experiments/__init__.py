"""The paper's experiments over the library: each table and figure as runs and rows
(``core``), launch budgets (``launch``), the run plan of a notebook (``plans``), checks before a run
(``preflight``), hyper-parameter tuning (``tuning``) and the synthetic ImageNet that rehearses the
paper path (``fake_imagenet``)."""
