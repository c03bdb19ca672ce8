"""The experiments behind each table and figure, as the library calls the notebooks make
(``from tfnas_core.experiments import notebook as E``), gathered from the modules that define them.

A notebook builds a ``Context`` (``context``: its settings, and the state of its runs) and asks
for what it needs:

* ``search_run`` / ``retrain_run`` and their keys, ``runs_table``, ``missing_table``, ``longer``
  (``runs``);
* ``table3/table4/table5/table13`` — ``ablation`` of each table's variants with the paper's rows
  beside ours, ``summarise``, ``ranking`` (``tables``: the same functions ``plans`` plans with);
* ``fig2/fig4/fig5`` — the records of the searches each figure is drawn from, and their curves
  (``figures``);
* ``zoo_table`` — Tables 2/6/8/9/11 for the published architectures (``zoo_table``).

With ``executor`` other than ``inline`` each experiment first computes its missing runs with that
executor (``run_plan``).  This module defines nothing: it only names what the notebooks use.
"""
from __future__ import annotations

from tfnas_core.experiments.context import Context, MissingRun, Settings
from tfnas_core.experiments.figures import (fig2, fig2_alpha, fig2_collapse, fig2_signal_line, fig4, fig4_curves,
                                            fig4_per_seed, fig5, fig5_curves, fig5_per_seed, fig5_verdict,
                                            per_seed_curves, search_rows, searched_depth, searched_latency)
from tfnas_core.experiments.run_plan import PlanFailed
from tfnas_core.experiments.runs import (DONE_KEYS, RECORD_KEYS, SearchRun, candidate_ops, cost_line, damaged_hint,
                                         longer, missing_table, read_done, retrain_run, runs_table, search_cfg,
                                         search_key, search_run, search_runs, train_cfg, train_key)
from tfnas_core.experiments.tables import (CI_COLUMNS, Variant, ablation, paired_comparisons, ranking, searches,
                                           summarise, table3, table3_variants, table4, table4_variants, table5,
                                           table5_long, table5_variants, table13, table13_long, table13_variants)
from tfnas_core.experiments.zoo_table import zoo_table

__all__ = ["CI_COLUMNS", "Context", "DONE_KEYS", "MissingRun", "PlanFailed", "RECORD_KEYS", "SearchRun", "Settings",
           "Variant", "ablation", "candidate_ops", "cost_line", "damaged_hint", "fig2", "fig2_alpha", "fig2_collapse",
           "fig2_signal_line", "fig4", "fig4_curves", "fig4_per_seed", "fig5", "fig5_curves", "fig5_per_seed",
           "fig5_verdict", "longer", "missing_table", "paired_comparisons", "per_seed_curves", "ranking",
           "read_done", "retrain_run", "runs_table", "search_cfg", "search_key", "search_rows", "search_run",
           "search_runs", "searched_depth", "searched_latency", "searches", "summarise", "table13",
           "table13_long", "table13_variants", "table3", "table3_variants", "table4", "table4_variants", "table5",
           "table5_long", "table5_variants", "train_cfg", "train_key", "zoo_table"]
