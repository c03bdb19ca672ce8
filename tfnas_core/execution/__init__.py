"""Where missing runs are computed: in this process, a local worker pool or SLURM.

``settings`` (the typed ``ExecutorSettings`` an executor is handed, ``SlurmOptions``), ``jobs``
(a missing run as a ``Job`` and its JSON line, ``Missing``, ``Outcome``), ``engine`` (``execute``:
the executor choice), ``local`` (the worker pool and its ``--serve`` worker), ``slurm`` (submitit
job arrays), ``events`` (progress lines), ``stale`` (what crashed runs leave) and ``fingerprint``
(a finished run's records without timings).  It never reads an experiment's context.
"""
