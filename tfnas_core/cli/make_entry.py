"""What make's recipes run: a notebook through papermill, the report, a plan, with make's variables
read from the environment, so that no shell ever parses a value a user typed (issue 29).

The Makefile exports every user variable ``VAR`` as ``TFNAS_MAKE_VAR`` holding its raw text (make
expands nothing in it); the recipes name only fixed words (``notebook table3-sampling``).  Here the
values are parsed with the preflight's own parsers (``preflight.py``: ``SEEDS`` and ``SLURM`` as YAML,
``JOBS`` and ``LONG_FACTOR`` as ASCII integers, the flags) and handed on as data: the notebook's
parameters as one YAML mapping in one argument of papermill's command line (``-y``, no shell; papermill
writes each string into the parameters cell escaped), the plan's as an argument list.

``python -m tfnas_core.cli.make_entry notebook NAME`` runs ``notebooks/NAME.ipynb`` into
``$(NB_OUT)/NAME-$(PROFILE).ipynb`` with the parameters it declares; ``report`` runs the evidence
report; ``plan NAME`` is ``python -m tfnas_core plan NAME`` with make's variables; ``tensorboard`` runs
TensorBoard over ``$(RUNS)`` (the event files every search and retraining writes into its run folder:
tb_log.py), or prints the command to run by hand when it cannot (no free port, no tensorboard).  A bad value: one
line ``error: ...`` on stderr, exit 2 (make's preflight has refused it already, while make read its
rules).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tfnas_core.experiments import preflight
from tfnas_core.experiments.preflight import PreflightError, parse_count, parse_flag, parse_slurm
from tfnas_core.latency.measured import ENV_REMEASURE
from tfnas_core.runs.archive import ENV_FRESH
from tfnas_core.runs.files import RUNS_ROOT

ENV_PREFIX = "TFNAS_MAKE_"  # TFNAS_MAKE_PROFILE holds make's PROFILE, and so on (Makefile: USER_VARS)
NOTEBOOKS = Path("notebooks")
PAPERMILL_FLAGS = ("--log-level", "WARNING", "--no-progress-bar")
_DECLARED = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=", re.M)  # `name: type = value` in the parameters cell


def value(name: str, environ=None) -> str:
    """make's ``name`` as the Makefile exported it ('' when unset), blanks stripped as make strips them;
    a control character in it is refused."""
    v = (os.environ if environ is None else environ).get(ENV_PREFIX + name, "").strip(" ")
    preflight.check_text(name, v)
    return v


def declared(notebook: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns (papermill's parameters of it)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return set(_DECLARED.findall("".join(cell["source"])))
    return set()


def notebook_parameters(environ=None) -> dict[str, Any]:
    """Every notebook parameter make's variables set (only those given, like the Makefile's ``-p``s)."""
    v = {name: value(name, environ) for name in preflight.VARIABLES}
    p: dict[str, Any] = {}
    if v["EXECUTOR"]:
        p["executor"] = v["EXECUTOR"]
    if v["JOBS"]:
        p["jobs"] = parse_count("JOBS", v["JOBS"], "worker processes of EXECUTOR=local")
    if v["SLURM"]:
        p["slurm"] = parse_slurm(v["SLURM"])
    p["profile"] = v["PROFILE"]
    p["runs_root"] = v["RUNS"]
    if v["IMAGENET"]:
        p["imagenet_root"] = v["IMAGENET"]
    if v["LUT"]:
        p["lut"] = v["LUT"]
    if v["SEEDS"]:
        p["seeds"] = preflight.check_seeds(v["SEEDS"])
    for name in ("BUDGET", "SEARCH_SET", "TRAIN_SET"):
        if v[name]:
            p[name.lower()] = v[name]
    if v["LONG_FACTOR"]:
        p["long_factor"] = parse_count("LONG_FACTOR", v["LONG_FACTOR"], "the longer searches' epoch factor; 1 skips them")
    if parse_flag("LONG_FINISHED_ONLY", v["LONG_FINISHED_ONLY"]):
        p["long_compute"] = False
    return p


def papermill(name: str, parameters: dict[str, Any], out_name: str, environ=None) -> int:
    """``papermill notebooks/NAME.ipynb $(NB_OUT)/OUT_NAME-$(PROFILE).ipynb`` with ``parameters`` as
    one YAML argument; ``FRESH=1`` sets ``TFNAS_FRESH=1`` for the kernel (run_archive.py), ``REMEASURE=1``
    ``TFNAS_REMEASURE=1`` (measured.py)."""
    import yaml

    env = dict(os.environ if environ is None else environ)
    source = NOTEBOOKS / f"{name}.ipynb"
    if not source.is_file():
        raise PreflightError(f"{source}: no such notebook")
    nb_out = Path(value("NB_OUT", env) or "outputs/notebooks")
    target = nb_out / f"{out_name}-{value('PROFILE', env)}.ipynb"
    if parse_flag("FRESH", value("FRESH", env)):
        env[ENV_FRESH] = "1"
    if parse_flag("REMEASURE", value("REMEASURE", env)):
        env[ENV_REMEASURE] = "1"  # measured.py: time every net again, replacing what this machine kept
    nb_out.mkdir(parents=True, exist_ok=True)
    argv = [value("PAPERMILL", env) or ".venv/bin/papermill", *PAPERMILL_FLAGS,
            "-y", yaml.safe_dump(parameters, sort_keys=False), "--", str(source), str(target)]
    return subprocess.run(argv, env=env).returncode


def run_notebook(name: str, environ=None) -> int:
    """make's pattern rule: ``== NAME (PROFILE=...) ==``, papermill, ``NAME: done in N s``."""
    source = NOTEBOOKS / f"{name}.ipynb"
    if not source.is_file():
        raise PreflightError(f"{source}: no such notebook")
    known = declared(source)
    parameters = {k: v for k, v in notebook_parameters(environ).items() if k in known}
    print(f"== {name} (PROFILE={parameters['profile']}) ==", flush=True)
    start = time.time()
    rc = papermill(name, parameters, name, environ)
    if rc == 0:
        print(f"{name}: done in {round(time.time() - start)} s", flush=True)
    return rc


def run_report(environ=None) -> int:
    profile = value("PROFILE", environ)
    rc = papermill("report", {"profile": profile}, "report", environ)
    if rc == 0:
        print(f"report: results/REPORT-{profile}.md", flush=True)
    return rc


def plan_argv(name: str, environ=None) -> list[str]:
    """``python -m tfnas_core plan``'s arguments for make's ``plan-NAME`` (each value one ``--flag=value``)."""
    v = {name: value(name, environ) for name in preflight.VARIABLES}
    argv = ["plan", name, f"--profile={v['PROFILE']}", f"--runs={v['RUNS']}"]
    for var, flag in (("SEEDS", "seeds"), ("IMAGENET", "imagenet"), ("LUT", "lut"), ("BUDGET", "budget"),
                      ("SEARCH_SET", "search-set"), ("TRAIN_SET", "train-set"), ("LONG_FACTOR", "long-factor")):
        if v[var]:
            argv.append(f"--{flag}={v[var]}")
    if parse_flag("RUN", v["RUN"]):
        argv.append("--run")
    for var, flag in (("EXECUTOR", "executor"), ("JOBS", "jobs"), ("SLURM", "slurm")):
        if v[var]:
            argv.append(f"--{flag}={v[var]}")
    return argv


TB_PORTS = range(6006, 6016)  # TensorBoard's default port, then the next ones


def free_port(ports=TB_PORTS, host: str = "localhost") -> int | None:
    """The first of ``ports`` that ``host`` can bind now (None: none)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    return None


def tensorboard_argv(environ=None, port: int | None = TB_PORTS[0]) -> list[str]:
    """``tensorboard --logdir=$(RUNS) --port=PORT``: the venv's tensorboard beside this Python, else the
    one on PATH; $(RUNS) must be a folder."""
    runs = value("RUNS", environ) or RUNS_ROOT
    if not Path(runs).is_dir():
        raise PreflightError(f"RUNS={preflight.shown(runs)}: no such folder (a search or a retraining writes "
                             "its event files into its run folder there)")
    exe = Path(sys.executable).parent / "tensorboard"
    return [str(exe) if exe.is_file() else "tensorboard", f"--logdir={runs}", f"--port={port or TB_PORTS[0]}"]


def run_tensorboard(environ=None) -> int:
    """make tensorboard: serve $(RUNS) on the first free port of ``TB_PORTS``; when none is free or
    TensorBoard cannot start, print the command to run by hand (exit 1)."""
    port = free_port()
    argv = tensorboard_argv(environ, port)
    if port is None:
        print(f"tensorboard: no free port in {TB_PORTS.start}-{TB_PORTS.stop - 1} here; run it by hand on another "
              f"port:\n  {shlex.join(argv[:-1])} --port=PORT", file=sys.stderr, flush=True)
        return 1
    print(f"tensorboard: {argv[1].split('=', 1)[1]} on http://localhost:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        rc = subprocess.run(argv).returncode
    except OSError as e:
        rc = 1
        print(f"tensorboard: cannot start {argv[0]} ({e.strerror or e})", file=sys.stderr)
    except KeyboardInterrupt:
        return 0
    if rc != 0:
        print(f"tensorboard: it exited with {rc}; run it by hand:\n  {shlex.join(argv)}", file=sys.stderr, flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfnas_core.cli.make_entry", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("notebook", "report", "plan", "tensorboard"))
    p.add_argument("name", nargs="?", help="the notebook (notebook, plan)")
    a = p.parse_args(argv)
    try:
        if a.what == "report":
            return run_report()
        if a.what == "tensorboard":
            return run_tensorboard()
        if not a.name:
            raise PreflightError(f"make_entry {a.what}: which notebook?")
        if a.what == "notebook":
            return run_notebook(a.name)
        from tfnas_core.cli import main as cli

        return cli.main(plan_argv(a.name))
    except PreflightError as e:
        print(f"error: {e}", file=sys.stderr)
        return preflight.EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
