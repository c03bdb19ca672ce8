"""A notebook's launch inputs (tfnas_core/experiments/launch.py): budgets, SEARCH_SET / TRAIN_SET, no silent
CPU, and plans that list exactly the keys the notebook then runs, at smoke and on the paper path at
the rehearsal budget (a synthetic ImageNet in the official layout, through papermill, inline and
through a real SLURM)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.experiments import launch

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- inputs


def test_set_grammar_is_the_clis_and_errors_are_one_line():
    assert launch.parse_set("epochs=2  warmup_epochs=1") == ["epochs=2", "warmup_epochs=1"]
    assert launch.parse_set(["epochs=2"]) == ["epochs=2"] and launch.parse_set(None) == []
    search, train = launch.overrides("smoke", search_set="epochs=3 lam=0.2 device=cpu", train_set="epochs=1")
    assert search == {"epochs": 3, "lam": 0.2, "device": "cpu"} and train == {"epochs": 1}
    for kw, needle in [({"search_set": "epochs"}, "SEARCH_SET: 'epochs' is not key=value"),
                       ({"search_set": "epoch=2"}, "SEARCH_SET: unknown search setting 'epoch'; did you mean epochs?"),
                       ({"search_set": "epochs=two"}, "SEARCH_SET: epochs=two: expected int"),
                       ({"search_set": "epochs=0"}, "SEARCH_SET: epochs"),
                       ({"train_set": "lr=-1"}, "TRAIN_SET: lr"),
                       ({"search_set": "profile=paper"}, "SEARCH_SET: unknown search setting 'profile'"),
                       ({"budget": "tiny"}, "BUDGET=tiny: expected one of full, rehearsal"),
                       ({"budget": "rehearsal"}, "BUDGET=rehearsal: a budget of PROFILE=paper")]:
        with pytest.raises(launch.LaunchError) as e:
            launch.overrides("smoke", **kw)
        assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_later_inputs_win_and_land_in_the_run_config():
    search, train = launch.overrides("paper", budget="rehearsal", lam=0.3, imagenet_root="/data/in1k",
                                     search_set="steps_per_epoch=5 lam=0.2")
    assert search["steps_per_epoch"] == 5 and search["lam"] == 0.2 and search["data_root"] == "/data/in1k"
    assert search["profile"] == train["profile"] == launch.REHEARSAL_PROFILE and train["data_root"] == "/data/in1k"
    ctx = launch.notebook_context("table3-sampling", "paper", budget="rehearsal", imagenet_root="/data/in1k",
                                  search_set="steps_per_epoch=5", cuda_available=False, progress=False,
                                  log=lambda m: None)
    cfg = E.search_cfg(ctx, 2, second_path="none")
    assert (cfg.epochs, cfg.warmup_epochs, cfg.steps_per_epoch, cfg.profile) == (2, 1, 5, "paper+rehearsal")
    assert E.search_cfg(ctx, 2) != E.search_cfg(launch.notebook_context(
        "table3-sampling", "paper", budget="rehearsal", imagenet_root="/data/in1k", cuda_available=False,
        progress=False, log=lambda m: None), 2)  # the override is part of the key


def test_rehearsal_keeps_every_paper_setting_but_the_budgets():
    from tfnas_core.train import config as profiles
    from tfnas_core.search import config as search_config

    search, train = launch.budget_overrides("paper", "rehearsal")
    budget_keys = {"profile", "epochs", "warmup_epochs", "steps_per_epoch", "val_batches", "num_workers"}
    assert set(search) == budget_keys
    paper = search_config.paper()
    assert (paper.resolution, paper.batch_size, paper.dataset, paper.target_ms, paper.elasticity) == \
        (224, 32, "imagenet-100", 15.0, True)
    assert set(train) == {"profile", "epochs", "warmup_epochs", "batch_size", "eval_batch_size", "train_subset",
                          "val_subset", "num_workers"}
    t = profiles.paper()
    assert (t.label_smoothing, t.drop_connect, t.amp, t.resolution) == (0.1, 0.2, True, 224)


def test_no_silent_cpu_at_the_paper_profile():
    full_s, full_t = launch.overrides("paper")
    with pytest.raises(launch.LaunchError, match="torch sees no CUDA device.*BUDGET=rehearsal"):
        launch.check_device("paper", full_s, full_t, cuda_available=False)
    s, t = launch.overrides("paper", search_set="device=cpu")
    with pytest.raises(launch.LaunchError):  # the retraining would still run on the CPU unasked
        launch.check_device("paper", s, t, cuda_available=False)
    s, t = launch.overrides("paper", search_set="device=cpu", train_set="device=cpu")
    assert launch.check_device("paper", s, t, cuda_available=False) == "cpu"
    assert launch.check_device("paper", full_s, full_t, cuda_available=True) == "cuda"
    s, t = launch.overrides("paper", budget="rehearsal")
    assert launch.check_device("paper", s, t, cuda_available=False) == "cpu"
    assert launch.check_device("paper", s, t, cuda_available=True) == "cuda"
    with pytest.raises(launch.LaunchError, match="device=cuda, but torch sees no CUDA"):
        launch.check_device("smoke", *launch.overrides("smoke", search_set="device=cuda"), cuda_available=False)


def test_the_paper_search_itself_refuses_a_silent_cpu():
    from dataclasses import replace

    from tfnas_core.search import config as search_config

    with pytest.raises(search_config.SearchConfigError, match="no CUDA device"):
        search_config.resolve(search_config.paper(), cuda_available=False)
    assert search_config.resolve(replace(search_config.paper(), device="cpu"), False).device == "cpu"


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "tfnas_core", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.slow
def test_make_and_plan_stop_in_one_line_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    p = _cli("plan", "table3", "--profile", "paper", "--imagenet", str(tmp_path), "--runs", str(tmp_path / "r"), "--run")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "BUDGET=rehearsal" in p.stderr
    assert not (tmp_path / "r").exists()
    # a plan that computes nothing, or runs that compute on SLURM nodes, do not need CUDA here
    p = _cli("plan", "table3", "--profile", "paper", "--imagenet", str(tmp_path), "--runs", str(tmp_path / "r"), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["runs"], p.stderr
    ctx = launch.notebook_context("table3-sampling", "paper", imagenet_root=str(tmp_path), executor="slurm",
                                  progress=False, log=lambda m: None)
    assert ctx.executor == "slurm"
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "reproduce-table3", "PROFILE=paper",
                        f"IMAGENET={tmp_path}", f"NB_OUT={tmp_path / 'nb'}", f"PYTHON={sys.executable}",
                        f"PAPERMILL={shutil.which('false')}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "torch sees no CUDA device" in r.stderr, r.stderr
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "plan-table3", "PROFILE=paper",
                        f"IMAGENET={tmp_path}", f"RUNS={tmp_path / 'r'}", f"PYTHON={sys.executable}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "hours" in r.stdout, r.stderr  # 5 searches of ~13 GPU-hours each, planned
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "reproduce-table3", "PROFILE=smoke",
                        "SEARCH_SET=epochs=x", f"NB_OUT={tmp_path / 'nb'}", f"PYTHON={sys.executable}",
                        f"PAPERMILL={shutil.which('false')}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "SEARCH_SET: epochs=x: expected int" in r.stderr, r.stderr
    assert not (tmp_path / "nb").exists()


# ----------------------------------------------------------------------------- plan == notebook


def _plan(runs: Path, *args) -> pd.DataFrame:
    p = _cli("plan", "table3", "--seeds", "2", "--runs", str(runs), "--json", *args)
    assert p.returncode == 0, p.stderr
    return pd.DataFrame(json.loads(p.stdout)["runs"])


def _notebook(clone: Path, out: Path, params: dict) -> pd.DataFrame:
    import papermill as pm

    pm.execute_notebook(str(clone / "notebooks" / "table3-sampling.ipynb"), str(out / "table3.ipynb"),
                        cwd=str(clone), progress_bar=False,
                        parameters={"seeds": [2], "results_dir": str(out / "results"),
                                    "figures_dir": str(out / "figures"), **params})
    return pd.read_csv(next((out / "results").glob("runs-*.csv")))


def _plan_then_run_then_plan(clone, out, runs, cli_args, params):
    before = _plan(runs, *cli_args)
    planned = set(before.loc[before["kind"] == "search", "key"])
    assert len(planned) == 5 and set(before.loc[before["kind"] == "search", "status"]) == {"missing"}
    ran = _notebook(clone, out, {"runs_root": str(runs), **params})
    assert set(ran.loc[ran["kind"] == "search", "key"]) == planned  # the plan named the searches the notebook ran
    after = _plan(runs, *cli_args)
    assert set(after["status"]) == {"done"} and set(after["key"]) == set(ran["key"])
    return ran


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The sources the notebooks need, outside the checkout (nothing is written into it)."""
    pytest.importorskip("papermill")
    base = tmp_path_factory.mktemp("clone")
    clone = base / "main"
    if (ROOT.parent / "shared").is_dir():  # the paper profile's official lists and LUT: ../shared beside the checkout
        (base / "shared").symlink_to(ROOT.parent / "shared")
    for d in ("tfnas_core", "notebooks", "data_splits"):
        shutil.copytree(ROOT / d, clone / d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "pyproject.toml", clone / "pyproject.toml")
    return clone


@pytest.mark.slow
def test_plan_keys_are_the_notebooks_keys_with_overrides_at_smoke(clone, tmp_path):
    ran = _plan_then_run_then_plan(
        clone, tmp_path, tmp_path / "runs", ["--profile", "smoke", "--search-set", "epochs=1 warmup_epochs=0",
                                            "--train-set", "epochs=1"],
        {"profile": "smoke", "search_set": "epochs=1 warmup_epochs=0", "train_set": "epochs=1"})
    cfg = json.loads((tmp_path / "runs" / ran["key"].iloc[0] / "config.json").read_text())
    assert (cfg["epochs"], cfg["warmup_epochs"]) == (1, 0)  # recorded in the run's config (and so its key)


def _rehearsal_params(root: Path) -> tuple[list[str], dict]:
    return (["--profile", "paper", "--budget", "rehearsal", "--imagenet", str(root)],
            {"profile": "paper", "budget": "rehearsal", "imagenet_root": str(root)})


@pytest.fixture(scope="module")
def rehearsal(clone, fake_imagenet_root, tmp_path_factory):
    """Table 3 on the paper path at the rehearsal budget, one seed, through papermill inline."""
    out = tmp_path_factory.mktemp("rehearsal")
    args, params = _rehearsal_params(fake_imagenet_root)
    ran = _plan_then_run_then_plan(clone, out, out / "runs", args, params)
    return out, ran


@pytest.mark.slow
def test_table3_rehearses_the_paper_path(rehearsal):
    out, ran = rehearsal
    assert (ran["kind"] == "search").sum() == 5 and (ran["kind"] == "train").sum() >= 1  # equal derived specs share one
    assert set(ran["source"]) == {"computed now"}
    search = json.loads((out / "runs" / ran.loc[ran["kind"] == "search", "key"].iloc[0] / "config.json").read_text())
    assert (search["profile"], search["dataset"], search["resolution"], search["batch_size"], search["target_ms"]) == \
        ("paper+rehearsal", "imagenet-100", 224, 32, 15.0)
    assert search["lut"].endswith("official/latency_gpu.pkl") and search["elasticity"] is True
    train = json.loads((out / "runs" / ran.loc[ran["kind"] == "train", "key"].iloc[0] / "config.json").read_text())
    assert (train["profile"], train["dataset"], train["resolution"], train["label_smoothing"]) == \
        ("paper+rehearsal", "imagenet", 224, 0.1)
    per_seed = pd.read_csv(out / "results" / "per_seed-paper.csv")
    assert len(per_seed) == 5 and per_seed["top1"].notna().all() and per_seed["lut_ms"].gt(0).all()


@pytest.mark.slow
def test_table3_rehearsal_through_slurm_runs_the_same_keys(rehearsal, clone, fake_imagenet_root, slurm, tmp_path):
    out, inline = rehearsal
    args, params = _rehearsal_params(fake_imagenet_root)
    ran = _notebook(clone, tmp_path, {"runs_root": str(tmp_path / "runs"), "executor": "slurm", **params,
                                      "slurm": {"timeout_min": 30, "array_parallelism": 1, "poll_s": 1.0}})
    assert set(ran["key"]) == set(inline["key"]) and set(ran["source"]) == {"computed now (slurm)"}


def test_rehearsals_and_changed_settings_never_write_the_committed_results():
    assert launch.output_dirs("results/t3", "figures") == ("results/t3", "figures")
    assert launch.output_dirs("results/t3", "figures", budget="rehearsal") == \
        ("outputs/rehearsal/results/t3", "outputs/rehearsal/figures")
    assert launch.output_dirs("results/t3", "/abs/fig", search_set="epochs=1") == \
        ("outputs/overridden/results/t3", "/abs/fig")
    assert launch.output_dirs("results/t3", train_set="epochs=1") == ("outputs/overridden/results/t3",)


@pytest.mark.slow
def test_make_checks_the_data_before_anything_runs(fake_imagenet_root, tmp_path):
    """``make reproduce-* PROFILE=paper``: a listed file missing from IMAGENET stops make in one line
    naming it, before papermill starts; ``SEARCH_SET='missing_ok=true'`` lets it through."""
    import os

    from tfnas_core.experiments import preflight

    preflight.check_data(str(fake_imagenet_root), "paper")
    broken = tmp_path / "imagenet"
    shutil.copytree(fake_imagenet_root, broken, copy_function=os.link)
    victim = sorted((broken / "train" / "n01560419").iterdir())[3]
    victim.unlink()
    with pytest.raises(preflight.PreflightError) as e:
        preflight.check_data(str(broken), "paper")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"IMAGENET={broken}: 1 of 127720 files missing (n01560419/{victim.name})")
    preflight.check_data(str(broken), "paper", search_set="missing_ok=true")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "reproduce-table3", "PROFILE=paper",
                        "BUDGET=rehearsal", f"IMAGENET={broken}", f"NB_OUT={tmp_path / 'nb'}", f"PYTHON={sys.executable}",
                        f"PAPERMILL={shutil.which('false')}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and victim.name in r.stderr, r.stderr
    assert not (tmp_path / "nb").exists()
