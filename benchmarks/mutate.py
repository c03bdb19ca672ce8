"""``make mutate``: mutation testing of the method's core with mutmut; the score per module.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies the package into ``mutants/``,
plants one small change at a time (an operator, a constant, a comparison, a dropped argument) and
runs the tests that cover the changed function; a change no test notices *survived*.  This runs it
over the modules below and writes ``results/bench/mutation.json`` and ``.md``: per module the
mutants killed, survived, with no covering test and timed out, the ones listed as equivalent
(``benchmarks/mutation_equivalents.tsv``: a mutant name, a tab, why no test can tell it from the
original), the score and every survivor not listed.  It is a measurement, like a benchmark, and
not part of ``make test``: on 2 cores the whole set takes an hour or more.

Score = (killed + timed out) / (all - equivalent - not run): a mutant that makes the tests hang was
noticed; one with no covering test was not; one a stopped run never reached is counted apart, per
function, and not scored.  Every run tests each mutant of the chosen modules again (they
are handed to mutmut by name, which re-runs a named mutant whatever mutants/ holds), and changing
pyproject's test selection resets mutants/ anyway; ``--report-only`` scores what mutants/ holds
without running anything, ``--fresh`` deletes mutants/ first (new mutants after code changes).
``--merge A B ...`` scores the runs of several checkouts together (runs split over worktrees, or a
second pass after new tests): each names a checkout whose mutants/ holds a run, and a mutant a later
one checked takes its status from there (``merge``: a function renumbered by a code change is
taken whole from the later run).

    python -m benchmarks.mutate [--only scaling objectives] [--jobs 2] [--fresh] [--out results/bench]
    python -m benchmarks.mutate --merge /tmp/wt-a /tmp/wt-b [--only report] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "benchmarks" / "mutation_equivalents.tsv"
# the search's steps (search/steps.py, all of it) and the loop functions that feed and sum them (the rest of
# search/loop.py is set-up, I/O and records)
LOOP_FUNCS = ("temperature", "weight_step_args", "arch_step_args", "search_epoch")
MODULES: dict[str, list[str]] = {
    "scaling": ["tfnas_core.search.scaling.*"],
    "objectives": ["tfnas_core.search.objectives.*"],
    "samplers": ["tfnas_core.search.samplers.*"],
    "latency": ["tfnas_core.latency.lut.*"],
    "stats": ["tfnas_core.stats.*"],
    "report": ["tfnas_core.report.claims.*", "tfnas_core.report.verdicts.*", "tfnas_core.report.render.*",
               "tfnas_core.report.forest.*"],
    "search": ["tfnas_core.search.steps.*"] + [f"tfnas_core.search.loop.x_{f}__mutmut_*" for f in LOOP_FUNCS]
              + ["tfnas_core.search.loop.xǁEpochSumsǁ*"],
}
DETECTED = ("killed", "timeout")


def _mutmut() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    if not exe.is_file():
        raise SystemExit("error: mutmut is not installed in this environment: pip install -e '.[mutate]' "
                         "(make mutate does it)")
    return str(exe)


def equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """``{mutant name: why}`` from a TSV of mutants and reasons (``EQUIVALENTS``;
    ``#`` comments and blank lines skipped)."""
    if not path.is_file():
        return {}
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, why = line.partition("\t")
        if not sep or not why.strip():
            raise SystemExit(f"error: {path}:{n}: expected 'MUTANT<TAB>reason', got {line!r}")
        out[name.strip()] = why.strip()
    return out


def parse_results(text: str) -> dict[str, str]:
    """``mutmut results --all true`` lines ``    name: status`` as ``{name: status}``."""
    out = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("tfnas_core."):
            out[name] = status.strip()
    return out


def function_of(name: str) -> str:
    """The function a mutant belongs to: its name without ``__mutmut_N``."""
    return name.rsplit("__mutmut_", 1)[0]


def merge(runs: list[dict[str, str]]) -> dict[str, str]:
    """The statuses of several runs (``parse_results`` of each, every mutant listed, in the order
    they ran): a mutant takes the status of the last run that checked it.  A function whose mutants
    a later run names differently (its code changed, and mutmut numbered them anew) takes all of
    them from that run, checked or not; only the mutants of the last run's code are kept (a function
    since removed drops out)."""
    def names(run: dict[str, str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for n in run:
            out.setdefault(function_of(n), set()).add(n)
        return out

    out: dict[str, str] = {}
    for run in runs:
        before, now = names(out), names(run)
        renumbered = {f for f in now if f in before and before[f] != now[f]}
        out = {n: st for n, st in out.items() if function_of(n) not in renumbered}
        out.update({n: st for n, st in run.items() if st != "not checked" or n not in out})
    return {n: st for n, st in out.items() if not runs or n in runs[-1]}  # the code as the last run saw it


def score(statuses: dict[str, str], equivalent: dict[str, str]) -> dict:
    """Per module: counts by status, equivalents, the score and the survivors not listed.  (What a
    GPU branch decides is reachable from CPU tests - the arch step's CUDA-graph branch, the samplers'
    devices - so a CPU run scores every mutant.)"""
    table = {}
    for module, globs in MODULES.items():
        mine = {n: s for n, s in statuses.items() if any(fnmatch(n, g) for g in globs)}
        if not mine:
            continue
        counts = Counter(mine.values())
        survivors = {n for n, s in mine.items() if s not in DETECTED + ("not checked",)}
        eq, undetected = sorted(survivors & equivalent.keys()), sorted(survivors - equivalent.keys())
        unrun = Counter(function_of(n).rsplit(".", 1)[-1] for n, s in mine.items() if s == "not checked")
        stale = sorted(n for n, s in mine.items() if s in DETECTED and n in equivalent)  # listed, yet a test kills it
        detected = sum(counts[s] for s in DETECTED)
        denom = len(mine) - len(eq) - counts["not checked"]
        table[module] = {"mutants": len(mine), **{s.replace(" ", "_"): c for s, c in sorted(counts.items())},
                         "equivalent": len(eq), "score_pct": round(100 * detected / denom, 1) if denom else None,
                         "undetected": undetected, "stale": stale,
                         "not_run": dict(sorted(unrun.items()))}
    total = sum(t["mutants"] for t in table.values())
    eq_all = sum(t["equivalent"] for t in table.values())
    unrun_all = sum(t.get("not_checked", 0) for t in table.values())
    det_all = sum(t.get(s, 0) for t in table.values() for s in DETECTED)
    run = total - eq_all - unrun_all
    return {"modules": table, "mutants": total, "equivalent": eq_all, "not_run": unrun_all,
            "score_pct": round(100 * det_all / run, 1) if run > 0 else None}


def markdown(res: dict, equivalent: dict[str, str]) -> str:
    lines = ["# Mutation testing (make mutate)", "",
             f"mutmut {res.get('mutmut', '?')} over the method's core; {res['mutants']} mutants, "
             f"{res['equivalent']} listed as equivalent, {res.get('not_run', 0)} not run; score {res['score_pct']} % "
             f"(killed + timed out over all run but the equivalent); "
             + (f"run time {res['wall_s'] / 60:.1f} min with {res['jobs']} worker(s) on {res['machine']}."
                if res.get("wall_s") is not None else
                f"scored from the runs in {', '.join(res['merged'])} (--merge: their run times are in their own reports)."
                if res.get("merged") else "scored from mutants/ (--report-only: no run time)."), "",
             "| module | mutants | killed | survived | no tests | timeout | equivalent | not run | score % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m, t in res["modules"].items():
        lines.append(f"| {m} | {t['mutants']} | {t.get('killed', 0)} | {t.get('survived', 0)} | {t.get('no_tests', 0)} "
                     f"| {t.get('timeout', 0)} | {t['equivalent']} | {t.get('not_checked', 0)} | {t['score_pct']} |")
    lines += ["", "## Not detected and not listed as equivalent", ""]
    for m, t in res["modules"].items():
        if t["undetected"]:
            lines.append(f"- {m}: " + ", ".join(n.rsplit(".", 1)[-1] for n in t["undetected"]))
    stale = [(m, t["stale"]) for m, t in res["modules"].items() if t.get("stale")]
    if stale:
        lines += ["", f"## Listed as equivalent, yet killed: stale lines of `{EQUIVALENTS.relative_to(ROOT)}`", ""]
        lines += [f"- {m}: " + ", ".join(n.rsplit(".", 1)[-1] for n in names) for m, names in stale]
    unrun = [(m, t["not_run"]) for m, t in res["modules"].items() if t.get("not_run")]
    if unrun:
        lines += ["", "## Not run (a stopped run did not reach them): mutants per function", ""]
        lines += [f"- {m}: " + ", ".join(f"{f} {n}" for f, n in fs.items()) for m, fs in unrun]
    lines += ["", f"Equivalent mutants and why: `{EQUIVALENTS.relative_to(ROOT)}` ({len(equivalent)} listed).",
              "See one: `.venv/bin/mutmut show NAME`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=list(MODULES), help="these modules only (default: all)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once (default: the cores)")
    ap.add_argument("--fresh", action="store_true", help="delete mutants/ first (mutants made anew from the code as it is)")
    ap.add_argument("--out", default="results/bench", help="where mutation.json and .md go")
    ap.add_argument("--report-only", action="store_true", help="score what mutants/ holds; run nothing")
    ap.add_argument("--merge", nargs="+", metavar="CHECKOUT", type=Path,
                    help="score the runs in these checkouts' mutants/ together, a later one's checked mutants "
                         "overriding (runs nothing)")
    a = ap.parse_args(argv)
    for d in a.merge or ():
        if not (d / "mutants").is_dir():
            raise SystemExit(f"error: {d}: no mutants/ folder (not a checkout that ran make mutate)")
    os.chdir(ROOT)
    exe = _mutmut()
    equivalent = equivalents()
    modules = a.only or list(MODULES)
    globs = [g for m in modules for g in MODULES[m]]
    env = dict(os.environ)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # the tests run from mutants/, one folder deeper than the checkout
        env.setdefault("TFNAS_SHARED", str(shared))
    t0 = time.perf_counter()
    if not a.report_only and not a.merge:
        if a.fresh:
            shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        print(f"mutate: {', '.join(modules)} with {a.jobs} worker(s); mutmut's progress follows", flush=True)
        rc = subprocess.run([exe, "run", "--max-children", str(a.jobs), *globs], env=env).returncode
        if rc:
            print(f"error: mutmut run exited {rc}", file=sys.stderr)
            return rc
    wall = None if a.report_only or a.merge else time.perf_counter() - t0
    runs = [parse_results(subprocess.run([exe, "results", "--all", "true"], env=env, capture_output=True, text=True,
                                         check=True, cwd=d).stdout) for d in (a.merge or [ROOT])]
    statuses = {n: s for n, s in merge(runs).items() if any(fnmatch(n, g) for g in globs)}
    res = score(statuses, equivalent)
    from importlib.metadata import version

    res.update(mutmut=version("mutmut"), wall_s=None if wall is None else round(wall, 1), jobs=a.jobs, machine=f"{os.cpu_count()} CPU cores",
               only=modules, merged=[str(d) for d in a.merge] if a.merge else None)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "mutation" if not a.only else "mutation-" + "-".join(modules)
    (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{name}.md").write_text(markdown(res, equivalent))
    print(f"mutate: score {res['score_pct']} % over {res['mutants']} mutants ({res['equivalent']} equivalent); "
          f"{sum(len(t['undetected']) for t in res['modules'].values())} not detected; "
          f"{'' if wall is None else f'{wall / 60:.1f} min; '}"
          f"-> {out / name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
