"""The notebook suite: clean sources, and every notebook executed headlessly at the smoke profile."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TABLE_NOTEBOOKS = {
    "table3-sampling": 5, "table4-depth-space": 3, "table5-latency-objectives": 8, "table13-lambda": 6,
}
EXPECTED_FIGURES = {nb.stem for nb in NOTEBOOKS}


def _cells(nb_path):
    return json.loads(nb_path.read_text())["cells"]


def test_the_suite_is_complete():
    assert {p.stem for p in NOTEBOOKS} == {
        "model-zoo", "fig2-operation-collapse", "fig4-depth-and-latency", "fig5-latency-objectives",
        "table3-sampling", "table4-depth-space", "table5-latency-objectives", "table13-lambda", "report"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_is_clean_and_parameterised(nb):
    cells = _cells(nb)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "outputs in the source"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for line in "".join(tagged[0]["source"]).splitlines():
        if line.strip():
            assert "  # " in line, f"parameter without a comment: {line}"
    for c in code:
        tree = ast.parse("".join(c["source"]))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defs, "notebooks call the library; no def/class/lambda in cells"
    names = [t.target.id for t in ast.parse("".join(tagged[0]["source"])).body if isinstance(t, ast.AnnAssign)]
    assert len(names) == len(set(names)), f"a parameter set twice: {sorted(n for n in names if names.count(n) > 1)}"
    papermill = pytest.importorskip("papermill")
    listed = [p["name"] for p in papermill.inspect_notebook(str(nb)).values()]
    assert sorted(listed) == sorted(names), "papermill --help-notebook must list every parameter"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_is_what_jupyterlab_saves(nb):
    """Opening a notebook in the lab must not rewrite it: the kernelspec and language_info are
    what the lab writes for the installed kernel, and the JSON is the server's serialisation."""
    nbformat = pytest.importorskip("nbformat")
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    text = nb.read_text()
    assert text == nbformat.writes(nbformat.reads(text, as_version=nbformat.NO_CONVERT)) + "\n"
    meta = json.loads(text)["metadata"]
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    assert meta["kernelspec"] == {"display_name": spec.display_name, "language": spec.language, "name": "python3"}
    info = meta["language_info"]
    assert info["name"] == "python" and info["pygments_lexer"] == "ipython3" and info["file_extension"] == ".py"
    assert info["version"].startswith("%d.%d." % sys.version_info[:2])


def _git(clone, *args):
    return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh checkout of the sources the notebooks need, committed in its own git repository."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path_factory.mktemp("clone")
    for d in ("tfnas_core", "notebooks", "data_splits"):
        shutil.copytree(ROOT / d, clone / d, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for f in ("pyproject.toml", ".gitignore"):
        shutil.copy(ROOT / f, clone / f)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone")
    return clone


@pytest.fixture(scope="module")
def nb_out(tmp_path_factory):
    return tmp_path_factory.mktemp("nb")


@pytest.fixture(scope="module")
def executed(clone, nb_out):
    """Run every notebook once at smoke as JupyterLab runs it: the kernel starts in notebooks/ and
    the paths keep their relative defaults (so all notebooks share the clone's run store).  The
    longer-search sections run at 2x the smoke epochs (3x is the default) to keep the suite short."""
    import papermill as pm

    base = nb_out
    out = {}
    for nb in NOTEBOOKS:
        pm.execute_notebook(str(clone / "notebooks" / nb.name), str(base / nb.name), cwd=str(clone / "notebooks"),
                            progress_bar=False, parameters={"profile": "smoke", "seeds": [2], "long_factor": 2})
        out[nb.stem] = (clone / "results" / nb.stem, clone / "figures")
    return out


@pytest.mark.slow
def test_executed_notebooks_show_no_warnings(executed, nb_out):
    for nb in NOTEBOOKS:
        for c in json.loads((nb_out / nb.name).read_text())["cells"]:
            for o in c.get("outputs", []):
                text = "".join(o.get("text", ""))
                assert "Warning" not in text, f"{nb.stem}: {text[:200]}"


def test_notebooks_run_from_notebooks_dir_leave_the_checkout_clean(clone, executed):
    assert sorted(p.name for p in (clone / "notebooks").iterdir()) == sorted(nb.name for nb in NOTEBOOKS)
    assert _git(clone, "status", "--porcelain") == ""
    assert (clone / "runs").is_dir() and (clone / "figures" / "table3-sampling-smoke.png").is_file()


@pytest.mark.parametrize("name, rows", TABLE_NOTEBOOKS.items())
def test_table_notebooks_write_tables_and_figures(executed, name, rows):
    res, figs = executed[name]
    summary = pd.read_csv(res / "summary-smoke.csv")
    assert len(summary) == rows
    for col in ("variant", "top1", "paper_top1", "top1_minus_paper", "lut_ms", "measured_ms", "flops_m",
                "search_min"):
        assert col in summary.columns
    assert summary["top1"].between(0, 100).all() and (summary["lut_ms"] > 0).all()
    assert (res / "summary-smoke.md").read_text().startswith("| variant |")
    assert len(pd.read_csv(res / "per_seed-smoke.csv")) == rows
    assert (figs / f"{name}-smoke.png").stat().st_size > 0 and (figs / f"{name}-smoke.pdf").is_file()


def test_fig2_collapse_table(executed):
    res, figs = executed["fig2-operation-collapse"]
    c = pd.read_csv(res / "collapse-smoke.csv")
    assert set(c["sampling"]) == {"Gumbel", "bi-sampling"} and set(c["layer"]) == {12, 17}
    assert c["top_share"].between(0, 100).all()
    assert (figs / "fig2-operation-collapse-smoke.png").is_file()
    a = pd.read_csv(res / "alpha-smoke.csv")
    assert set(a["sampling"]) == {"Gumbel", "bi-sampling"} and a["max_share"].between(0, 1).all()
    assert a["entropy"].between(0, 1 + 1e-9).all() and (a.groupby(["sampling", "seed"])["arch_steps"].diff().dropna() >= 0).all()
    assert (figs / "fig2-alpha-smoke.png").is_file()
    # the longer search: 2x the epochs here (the fixture's long_factor), the same warm-up, so more
    # than 2x the arch steps of the plain searches
    long = pd.read_csv(res / "alpha-smoke-long.csv")
    assert set(long["sampling"]) == {"Gumbel", "bi-sampling"}
    assert long["arch_steps"].max() > 2 * a["arch_steps"].max() and long["epoch"].max() == 2 * a["epoch"].max()
    assert len(pd.read_csv(res / "collapse-smoke-long.csv")) == len(c)
    per = pd.read_csv(res / "per_seed-smoke-long.csv")
    assert set(per["variant"]) == {"Gumbel", "bi-sampling"} and (per["lut_ms"] > 0).all() and (per["target_ms"] > 0).all()
    assert (figs / "fig2-alpha-smoke-long.png").is_file() and (figs / "fig2-operation-collapse-smoke-long.png").is_file()


@pytest.mark.parametrize("name, groups", [("fig4-depth-and-latency", {"a", "b"}), ("fig5-latency-objectives", {"c1", "c2"})])
def test_curve_figures(executed, name, groups):
    res, figs = executed[name]
    c = pd.read_csv(res / "curves-smoke.csv")
    assert set(c.iloc[:, 0]) == groups
    assert {"epoch", "mean", "min", "max"} <= set(c.columns)
    assert (c["min"] <= c["mean"]).all() and (c["mean"] <= c["max"]).all()
    assert (figs / f"{name}-smoke.pdf").is_file()


def test_fig5_uses_tuned_lambdas_and_records_the_target(executed):
    """C1/C2 were tuned (Table 5's CSV, read back by Fig. 5) and the curves carry target and λ."""
    res, _ = executed["fig5-latency-objectives"]
    tuned = pd.read_csv(res.parent / "table5-latency-objectives" / "tuned-smoke.csv").set_index("objective")
    c = pd.read_csv(res / "curves-smoke.csv")
    assert {"target_ms", "lam", "lam2"} <= set(c.columns) and (c["target_ms"] == tuned["target_ms"].iloc[0]).all()
    for obj in ("c1", "c2"):
        assert (c.loc[c["objective"] == obj, "lam"] == tuned.loc[obj, "lam"]).all()
    v = pd.read_csv(res / "verdict-smoke.csv")
    assert len(v) == 4 and v["share_above_pct"].between(0, 100).all()


def test_model_zoo_table(executed):
    res, _ = executed["model-zoo"]
    z = pd.read_csv(res / "zoo-smoke.csv")
    assert len(z) == 12 and (z["measured_ms"] > 0).all()
    assert (z["flops_m"] - z["paper_flops_m"]).abs().max() < 9


def test_model_zoo_sections_with_empty_parameters_run_nothing(executed, nb_out):
    """weights_dir empty: no evaluation; the original CPU table is not beside the clone (its
    default path is ../shared/...): that section says so."""
    res, _ = executed["model-zoo"]
    assert not (res / "top1-smoke.csv").exists() and not (res / "cpu-lut-smoke.csv").exists()
    text = _outputs(nb_out / "model-zoo.ipynb")
    assert "ImageNet top-1 not evaluated" in text and "its section is skipped" in text


def _outputs(nb_path) -> str:
    """The text of every output of an executed notebook (not its sources)."""
    out = []
    for c in json.loads(nb_path.read_text())["cells"]:
        for o in c.get("outputs", []):
            out.append("".join(o.get("text", "")))
            out += ["".join(v) if isinstance(v, list) else str(v) for v in o.get("data", {}).values()]
    return "\n".join(out)


@pytest.mark.slow
def test_model_zoo_evaluates_given_weights_and_sets_the_released_cpu_table_beside(clone, tmp_path):
    """The zoo notebook with weights_dir and imagenet_root: random weights of two zoo nets (one in the
    original's layout, one in ours under its torch.hub name) on a 6-class val/ give a table of
    computed numbers beside the paper's top-1 (the accuracy itself is not checked); the original
    CPU table (../shared, where present) is set beside the published CPU latencies and this
    machine's measurement, with the difference per net."""
    import papermill as pm
    import torch
    from PIL import Image

    from conftest import SHARED
    from tfnas_core.nn import model
    from tfnas_core.released import official
    from tfnas_core.arch import zoo
    from tfnas_core.arch.space import PAPER_SCALE

    root = tmp_path / "imagenet"
    for i, wnid in enumerate(["n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"]):
        (root / "val" / wnid).mkdir(parents=True)
        for j in range(2):
            Image.new("RGB", (80 + 16 * j, 64), (40 * i, 90 * j, 100)).save(root / "val" / wnid / f"ILSVRC2012_val_{i}{j}.JPEG")
    weights = tmp_path / "weights"
    torch.manual_seed(0)
    d, c = zoo.load("TF-NAS-D"), zoo.load("TF-NAS-C")
    official.export(d, model.build(d, PAPER_SCALE.with_(num_classes=6)).state_dict(), weights / "TF-NAS-D")
    torch.save(model.build(c, PAPER_SCALE.with_(num_classes=6)).state_dict(), weights / "tfnas_c.pt")
    cpu_lut = SHARED / "reference" / "official" / "latency_cpu.pkl"
    res = tmp_path / "results"
    pm.execute_notebook(str(clone / "notebooks" / "model-zoo.ipynb"), str(tmp_path / "out.ipynb"),
                        cwd=str(clone / "notebooks"), progress_bar=False,
                        parameters={"profile": "smoke", "weights_dir": str(weights), "imagenet_root": str(root),
                                    "eval_limit": 6, "eval_batch": 3, "official_cpu_lut": str(cpu_lut),
                                    "results_dir": str(res), "figures_dir": str(tmp_path / "figures")})
    top1 = pd.read_csv(res / "top1-smoke.csv")
    assert list(top1["architecture"]) == ["TF-NAS-C", "TF-NAS-D"]
    assert list(top1["weights"]) == ["tfnas_c.pt", "TF-NAS-D/model.pth.tar"]
    assert (top1["images"] == 6).all() and (top1["classes"] == 6).all()
    assert top1["top1"].between(0, 100).all() and (top1["top1"] <= top1["top5"]).all() and top1["top5"].le(100).all()
    assert list(top1["paper_top1"]) == [zoo.PAPER["TF-NAS-C"].top1, zoo.PAPER["TF-NAS-D"].top1]
    assert (top1["top1_minus_paper"] - (top1["top1"] - top1["paper_top1"])).abs().max() < 1e-6
    text = _outputs(tmp_path / "out.ipynb")
    assert "Warning" not in text
    if not cpu_lut.is_file():
        assert not (res / "cpu-lut-smoke.csv").exists() and "its section is skipped" in text
        return
    cpu = pd.read_csv(res / "cpu-lut-smoke.csv").set_index("architecture")
    assert list(cpu.index) == list(zoo.RELEASED)
    # the released table's sums (../shared/reference/README.md) beside the published measurements
    want = {"TF-NAS-A": (74.34, 80.14), "TF-NAS-B": (64.94, 72.10), "TF-NAS-C": (58.05, 51.87),
            "TF-NAS-D": (49.00, 46.09), "TF-NAS-CPU-A": (65.24, 60.11), "TF-NAS-CPU-B": (46.84, 40.09)}
    for name, (lut_ms, published) in want.items():
        assert cpu.loc[name, "cpu_lut_ms"] == pytest.approx(lut_ms, abs=0.006)
        assert cpu.loc[name, "published_cpu_ms"] == published
        assert cpu.loc[name, "lut_vs_published_pct"] == pytest.approx(100 * (lut_ms / published - 1), abs=0.02)
    assert (cpu["measured_here_ms"] > 0).all() and cpu["here_vs_published_pct"].notna().all()
    assert "by -9.9 % to +16.8 % (largest: TF-NAS-CPU-B" in text


def test_report_notebook_writes_the_report_and_its_figure(executed):
    _, figs = executed["report"]
    md = (figs.parent / "results" / "REPORT-smoke.md").read_text()
    assert md.startswith("# Evidence report (smoke profile)") and "| claim | where | paper |" in md
    assert "no results/fig2-operation-collapse" not in md  # fig2 ran before it (sorted order): judged
    assert "top-op share (%, mean over the counted layers) Gumbel − bi-sampling" in md
    pages = sorted(p.name for p in figs.glob("report-smoke-*.png"))  # the forest plot in pages (report.figures)
    assert pages and pages[0] == "report-smoke-1.png" and all((figs / p).stat().st_size > 0 for p in pages)
    assert all((figs / p).with_suffix(".pdf").is_file() for p in pages)
    assert "## What the evidence cost" in md and "| all notebooks (distinct runs) |" in md


@pytest.mark.parametrize("name", [n.stem for n in NOTEBOOKS if n.stem not in ("model-zoo", "report")])
def test_experiment_notebooks_list_their_runs(executed, name):
    res, _ = executed[name]
    runs = pd.read_csv(res / "runs-smoke.csv")
    assert len(runs) and runs["key"].is_unique and set(runs["kind"]) <= {"search", "train"}
    assert set(runs["source"]) <= {"computed now", "run store", "archive"} and (runs["wall_min"] > 0).all()


def test_longer_sections_and_per_seed_curves(executed):
    """Table 5/13 and Fig. 4/5 write their longer-search tables (searches only, 2x the epochs here)
    and the per-seed curves the report reads; Fig. 2 writes one row per search."""
    t5, figs = executed["table5-latency-objectives"]
    per = pd.read_csv(t5 / "per_seed-smoke-long.csv")
    assert len(per) == 8 and (per["epochs"] == 4).all() and (per["lut_ms"] > 0).all()
    tuned = pd.read_csv(t5 / "tuned-smoke-long.csv")
    assert tuned["objective"].tolist() == ["c1", "c2"] and (tuned["epochs"] == 4).all()
    assert (figs / "table5-latency-objectives-smoke-long.png").is_file()
    t13, _ = executed["table13-lambda"]
    assert len(pd.read_csv(t13 / "per_seed-smoke-long.csv")) == 6
    f4, _ = executed["fig4-depth-and-latency"]
    for sfx in ("", "-long"):
        c = pd.read_csv(f4 / f"per_seed_curves-smoke{sfx}.csv")
        assert set(c["panel"]) == {"a", "b"} and (c["depth"] > 0).all() and c["warmup_epochs"].eq(1).all()
    f5, _ = executed["fig5-latency-objectives"]
    c = pd.read_csv(f5 / "per_seed_curves-smoke-long.csv")
    assert set(c["objective"]) == {"c1", "c2"} and c["epoch"].max() == 4
    assert len(pd.read_csv(f5 / "verdict-smoke-long.csv")) == 4
    f2, _ = executed["fig2-operation-collapse"]
    s = pd.read_csv(f2 / "per_seed-smoke.csv")
    assert set(s["variant"]) == {"Gumbel", "bi-sampling"} and (s["search_min"] > 0).all() and s["val_acc"].notna().all()


@pytest.mark.parametrize("name", [n.stem for n in NOTEBOOKS if n.stem not in ("model-zoo", "report")])
def test_plans_list_the_runs_the_notebooks_ran(executed, clone, name, monkeypatch):
    """``python -m tfnas_core plan`` and the notebook agree: after the notebook ran, its plan lists
    the runs of its runs table, all done (Table 5 / Fig. 5: those but the C1/C2 tuning's probes)."""
    from tfnas_core.experiments import notebook as E
    from tfnas_core.experiments import plans

    res, _ = executed[name]
    monkeypatch.chdir(clone)  # the tuned C1/C2 CSV is read from results/ as the notebooks read it
    ctx = E.Context("smoke", runs_root=str(clone / "runs"), archive_root=None, progress=False)
    df = plans.plan(name, ctx, [2], long_factor=2)
    assert set(df["status"]) == {"done"}, df[df["status"] != "done"]
    ran = set(pd.read_csv(res / "runs-smoke.csv")["key"])
    if name in ("table5-latency-objectives", "fig5-latency-objectives"):  # the one that tuned C1/C2 also ran the
        assert set(df["key"]) <= ran  # tuning's probes; a plan reads the tuned λ from the CSV it wrote
    else:
        assert set(df["key"]) == ran


@pytest.mark.slow
def test_notebook_on_an_executor_gives_the_inline_tables(executed, clone, tmp_path, monkeypatch):
    """Table 3 at smoke through papermill with its runs on SLURM (a local pool where no SLURM
    answers): every run is the one the inline notebook computed, and so is every number."""
    import papermill as pm

    from conftest import slurm_env
    from tfnas_core.execution import fingerprint as X

    env = slurm_env()
    executor = "slurm" if env is not None else "local"
    if env is not None:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        monkeypatch.setenv("PATH", env["PATH"])
    runs, res = tmp_path / "runs", tmp_path / "results"
    pm.execute_notebook(str(clone / "notebooks" / "table3-sampling.ipynb"), str(tmp_path / "out.ipynb"),
                        cwd=str(clone / "notebooks"), progress_bar=False,
                        parameters={"profile": "smoke", "seeds": [2], "runs_root": str(runs), "results_dir": str(res),
                                    "figures_dir": str(tmp_path / "fig"), "executor": executor, "jobs": 2,
                                    "slurm": {"timeout_min": 5, "poll_s": 0.5}})
    inline_res, _ = executed["table3-sampling"]
    cols = ["variant", "seed", "top1", "top5", "lut_ms", "flops_m", "depths"]
    pd.testing.assert_frame_equal(pd.read_csv(res / "per_seed-smoke.csv")[cols], pd.read_csv(inline_res / "per_seed-smoke.csv")[cols])
    ran = pd.read_csv(res / "runs-smoke.csv")
    assert set(ran["source"]) == {f"computed now ({executor})"}
    for key in ran["key"]:
        assert X.fingerprint(runs / key) == X.fingerprint(clone / "runs" / key), key
