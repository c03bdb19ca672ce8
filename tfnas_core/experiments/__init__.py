"""The paper's experiments over the library: a notebook's ``context`` (settings apart from the state
of its runs), its single ``runs`` (search, retraining, their keys), the ``tables`` (3/4/5/13) and
``figures`` (2/4/5) as runs and rows, the published architectures' ``zoo_table``, everything the
notebooks call in one namespace (``notebook``), a missing run as a worker's job (``jobs``), the run
plan that computes missing runs with an executor (``run_plan``) and lists a notebook's runs before
it runs (``plans``), launch budgets (``launch``), checks before a run (``preflight``),
hyper-parameter tuning (``tuning``) and the synthetic ImageNet that rehearses the paper path
(``fake_imagenet``)."""
