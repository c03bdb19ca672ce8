"""Where missing runs are computed: inline, a local worker pool or SLURM (``executors``)."""
