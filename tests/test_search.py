"""The search loop (paper Sec. 3.3, Eq. 3-9, Alg. 1; Appendix B): every variant under ``smoke``,
optimiser / elasticity details, resume equality, NaN stop, config handling and the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core import stats
from tfnas_core.arch import spec as arch_spec
from tfnas_core.cli import main as cli
from tfnas_core.latency import lut as latency
from tfnas_core.search import samplers
from tfnas_core.search import loop as search
from tfnas_core.search import steps
from tfnas_core.search import config as search_config
from tfnas_core.arch import zoo
from tfnas_core.nn.elastic import rank_channels
from tfnas_core.search.config import SearchConfig, apply_overrides, smoke
from tfnas_core.arch.space import get_space

ROOT = Path(__file__).resolve().parents[1]
QUIET = lambda m: None  # noqa: E731
CPU_LUT = ROOT / "tfnas_core" / "luts" / "cpu_local.json"


def tiny(tmp_path: Path, **kw) -> SearchConfig:
    """Smoke, smaller still: 2 epochs (1 warm-up) of 2 weight steps, one arch step."""
    base = dict(steps_per_epoch=2, val_batches=1, split_dir=str(tmp_path / "splits"))
    return search_config.check(replace(smoke(), **{**base, **kw}))


def comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in search.TIME_FIELDS} for r in records]


# ----------------------------------------------------------------------------- every variant


VARIANTS = (
    [{"second_path": s} for s in samplers.SECOND_PATH_STRATEGIES]
    + [{"depth_space": d} for d in ("skip-in", "skip-out")]
    + [{"objective": o} for o in ("eq9", "c1", "c2")]
    + [{"elasticity": False}, {"arch_step": "hard"}, {"t_schedule": "linear"}]
)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v}" for k, v in v.items()))
def test_every_variant_runs_and_records(tmp_path, variant):
    cfg = tiny(tmp_path, **variant)
    out = tmp_path / "run"
    summary = search.run(cfg, out, log=QUIET)
    records = search.read_records(out / "records.jsonl")
    assert [r["phase"] for r in records] == ["warmup", "search"]
    assert records[0]["arch_steps"] == 0 and records[1]["arch_steps"] == 1
    lut = latency.load(CPU_LUT)
    last = records[-1]
    n_layers = sum(s.depth[1] for s in get_space("tfnas").searchable)
    assert len(last["derived_ops"]) == len(last["alpha_softmax"]) == n_layers
    for probs in last["alpha_softmax"] + last["beta_softmax"]:
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    # the arch step moved α away from the uniform start (log 1/N everywhere)
    assert any(max(p) - min(p) > 1e-6 for p in last["alpha_softmax"])
    spec = arch_spec.load(out / "spec.json")
    assert summary["lut_ms"] == pytest.approx(lut.predict(spec)) == pytest.approx(last["lut_ms_after"])
    assert list(spec.mids) == last["mids"]
    assert json.loads((out / "config.json").read_text())[next(iter(variant))] == next(iter(variant.values()))
    if variant.get("elasticity") is False:
        assert last["lut_ms_after"] == last["lut_ms_before"] and not last["es_applied"]
    gap = 100 * (summary["lut_ms"] / summary["target_ms"] - 1)  # met: within 1 % on either side, not "at or under"
    assert summary["target_gap_pct"] == pytest.approx(gap, abs=1e-4) and summary["met"] is (abs(gap) < 1.0)
    assert summary["target_status"] == stats.target_status(summary["lut_ms"], summary["target_ms"])
    assert summary["target_status"].startswith("met (" if summary["met"] else "under by" if gap < 0 else "over by")
    for r in records:
        assert all(v is None or isinstance(v, (int, float, str, list, bool)) for v in r.values())


def test_records_read_with_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "run"
    search.run(tiny(tmp_path), out, log=QUIET)
    df = pd.read_json(out / "records.jsonl", lines=True)
    assert list(df["epoch"]) == [1, 2]
    for col in ("derived_ops", "alpha_softmax", "beta_softmax", "derived_depths", "lut_ms_before", "lut_ms_after",
                "expected_ms", "train_acc", "val_acc", "train_loss", "arch_loss", "temperature", "lr", "epoch_s"):
        assert col in df.columns
    summary = json.loads((out / "summary.json").read_text())
    assert summary["search_wall_s"] > 0 and summary["spec"]["space"] == "tfnas"


# ----------------------------------------------------------------------------- the steps


def _w(net, x, y, opt, cfg, gen, bi):
    """``steps.weight_step`` under ``cfg`` (``bi``: a searching epoch's), its numbers read."""
    return steps.weight_step(net, x, y, opt, gen, **search.weight_step_args(cfg, bi)).numbers()


def _a(net, x, y, opt, lut, cfg, temp, gen):
    """``steps.arch_step`` under ``cfg`` at temperature ``temp``, its numbers read."""
    return steps.arch_step(net, x, y, opt, lut, gen, temperature=temp, **search.arch_step_args(cfg)).numbers()


def _net_and_batch(depth_space="sink", seed=0):
    cfg = replace(smoke(), depth_space=depth_space, target_ms=20.0)
    net = search.build_supernet(cfg, 10, 1, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 1, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    return cfg, net, x, y


def _record_paths(net):
    """Record the op choices of every forward (``forward`` and the weight step's shared-stem
    ``forward_from`` both go through ``forward_from``)."""
    seen = []
    inner = net.forward_from

    def recording(x, ops, depths=None):
        seen.append(list(ops))
        return inner(x, ops, depths)

    net.forward_from = recording
    return seen


@pytest.mark.parametrize("strategy", samplers.SECOND_PATH_STRATEGIES)
def test_weight_step_bi_sampling(strategy):
    cfg, net, x, y = _net_and_batch()
    cfg = replace(cfg, second_path=strategy)
    w_opt, _, _ = search.build_optimizers(net, cfg)
    paths = _record_paths(net)
    alphas_before = [a.detach().clone() for a in net.alphas]
    _w(net, x, y, w_opt, cfg, samplers.make_generator(0), bi=True)
    assert len(paths) == (1 if strategy == "none" else 2)  # two forwards, one backward
    if strategy != "none":
        assert all(a != b for a, b in zip(*paths))  # the second path avoids the first's op in every layer
    assert all(torch.equal(a, b) for a, b in zip(alphas_before, net.alphas))  # weights only
    paths.clear()
    _w(net, x, y, w_opt, cfg, samplers.make_generator(0), bi=False)  # warm-up: one path
    assert len(paths) == 1


@pytest.mark.parametrize("mode", ["relaxed", "hard"])
def test_arch_step_runs_all_ops_or_one_and_updates_only_arch(mode):
    cfg, net, x, y = _net_and_batch()
    cfg = replace(cfg, arch_step=mode, fast=False)  # the plain path calls every candidate block (counted here)
    net.set_fast(False)
    _, _, a_opt = search.build_optimizers(net, cfg)
    calls = []
    for layer in net.layers:
        for op in layer.candidates:
            op.register_forward_hook(lambda m, a, o: calls.append(m))
    weights_before = [p.detach().clone() for p in net.weight_parameters()]
    alphas_before = [a.detach().clone() for a in net.alphas]
    lut = latency.load(CPU_LUT)
    r = _a(net, x, y, a_opt, lut, cfg, 5.0, samplers.make_generator(0))
    n_layers, n_ops = net.num_layers, len(net.op_names)
    assert len(calls) == (n_layers * n_ops if mode == "relaxed" else n_layers)
    assert all(torch.equal(a, b) for a, b in zip(weights_before, net.weight_parameters()))
    assert all(p.grad is None for p in net.weight_parameters())
    # straight-through: every layer's α gets a gradient even when only one op ran
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.alphas)
    assert any(not torch.equal(a, b) for a, b in zip(alphas_before, net.alphas))
    for a in net.alphas:  # re-normalised to log-probabilities
        assert torch.logsumexp(a.detach(), 0).item() == pytest.approx(0.0, abs=1e-5)
    assert r["lat_ms"] > lut.base


def test_objective_is_used_in_the_arch_step():
    cfg, net, x, y = _net_and_batch()
    lut = latency.load(CPU_LUT)
    out = {}
    for obj, target in (("eq9", 1e4), ("abs", 1e4), ("c2", 1e4)):
        torch.manual_seed(0)
        c = replace(cfg, objective=obj, target_ms=target)
        _, _, a_opt = search.build_optimizers(net, c)
        out[obj] = _a(net, x, y, a_opt, lut, c, 5.0, samplers.make_generator(0))
    assert out["eq9"]["lat_loss"] == 0.0  # Eq. 9's hinge: far under the target costs nothing
    assert out["abs"]["lat_loss"] == pytest.approx(0.1 * abs(out["abs"]["lat_ms"] / 1e4 - 1), rel=1e-5)
    assert out["c2"]["lat_loss"] == pytest.approx(0.1 * out["c2"]["lat_ms"], rel=1e-5)


def test_c1_lambdas_reach_the_loss_and_config():
    """The C1 λ bug: c1's λ1 default (0.2) and a non-default λ1/λ2 must reach the arch loss, and
    the values used must be in the resolved config (config.json, run key)."""
    cfg, net, x, y = _net_and_batch()
    lut = latency.load(CPU_LUT)
    resolved = search_config.resolve(replace(smoke(), objective="c1"), False)
    assert (resolved.lam, resolved.lam2) == (0.2, 0.6)  # c1's defaults, not abs's λ = 0.1
    assert search_config.resolve(smoke(), False).lam == 0.1 and search_config.resolve(smoke(), False).lam2 is None
    assert search_config.resolve(replace(smoke(), objective="c1", lam=0.7), False).lam == 0.7
    with pytest.raises(search_config.SearchConfigError, match="lam2"):
        search_config.fill_objective_defaults(replace(smoke(), objective="abs", lam2=0.5))
    for lam, lam2 in ((None, None), (0.5, None), (0.5, 1.3)):
        c = search_config.fill_objective_defaults(replace(cfg, objective="c1", lam=lam, lam2=lam2))
        _, _, a_opt = search.build_optimizers(net, c)
        r = _a(net, x, y, a_opt, lut, c, 5.0, samplers.make_generator(0))
        import math
        want = (lam or 0.2) * math.log(r["lat_ms"]) ** (lam2 or 0.6)
        assert r["lat_loss"] == pytest.approx(want, rel=1e-5)


def test_temperature_schedules():
    cfg = replace(smoke(), epochs=6, warmup_epochs=2)
    exp = [search.temperature(cfg, e) for e in range(6)]
    assert exp == pytest.approx([5.0, 5.0, 5.0, 4.8, 4.608, 4.42368])
    lin = [search.temperature(replace(cfg, t_schedule="linear"), e) for e in range(6)]
    assert lin == pytest.approx([5.0, 5.0, 5.0, 3.4, 1.8, 0.2])


def test_optimisers_follow_appendix_b():
    cfg = search_config.paper()
    net = search.build_supernet(replace(smoke()), 10, 1, torch.device("cpu"))
    w_opt, w_sched, a_opt = search.build_optimizers(net, cfg)
    g = w_opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.025, 0.9, 1e-5)
    a = a_opt.param_groups[0]
    assert (a["lr"], a["betas"], a["weight_decay"]) == (0.01, (0.5, 0.999), 5e-4)
    assert {id(p) for p in g["params"]} == {id(p) for p in net.weight_parameters()}
    assert {id(p) for p in a["params"]} == {id(p) for p in net.arch_parameters()}
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(w_sched.get_last_lr()[0])
        w_opt.step()
        w_sched.step()
    assert lrs[0] == 0.025 and lrs[45] == pytest.approx(0.0125) and lrs[-1] < 1e-4  # cosine over all epochs


def test_elasticity_permutes_momentum_with_the_channels():
    cfg, net, x, y = _net_and_batch()
    w_opt, _, _ = search.build_optimizers(net, cfg)
    _w(net, x, y, w_opt, cfg, samplers.make_generator(0), bi=True)
    _w(net, x, y, w_opt, cfg, samplers.make_generator(1), bi=True)
    with torch.no_grad():  # make a trained op (one with momentum) the derived op of every layer
        for l, layer in enumerate(net.layers):
            i = next(i for i, op in enumerate(layer.candidates) if op.dw_conv.weight in w_opt.state)
            net.alphas[l].copy_(torch.log_softmax(5.0 * torch.eye(len(layer.candidates))[i], 0))
    lut = latency.load(CPU_LUT)
    kept = [k for stage in net.derived_layers() for k in stage]
    mids_before = {(l, i): net.mids[l][i] for l, i in kept}
    snap = {}
    for l, i in kept:
        block = net.layers[l].candidates[i]
        snap[(l, i)] = (rank_channels(block.dw_conv.weight),
                        [(p, dim, p.detach().clone(), w_opt.state[p]["momentum_buffer"].clone())
                         for p, dim in block.coupled_tensors() if p in w_opt.state])
    es = steps.elasticity(net, lut, 0.8 * lut.predict(net.derive()), w_opt, enabled=True)
    assert es["es_changed"] > 0 and es["lut_ms_after"] < es["lut_ms_before"]
    permuted = 0
    for k, (perm, tensors) in snap.items():
        changed = net.mids[k[0]][k[1]] != mids_before[k]
        assert tensors, "the momentum buffers of a trained op exist"
        for p, dim, old_w, old_buf in tensors:
            idx = perm if changed else torch.arange(len(perm))
            assert torch.equal(p.detach(), old_w.index_select(dim, idx))
            assert torch.equal(w_opt.state[p]["momentum_buffer"], old_buf.index_select(dim, idx))
        permuted += changed and not torch.equal(perm, torch.arange(len(perm)))
    assert permuted > 0


# ----------------------------------------------------------------------------- resume, NaN


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    cfg = tiny(tmp_path, epochs=3, warmup_epochs=1)
    a, b = tmp_path / "a", tmp_path / "b"
    search.run(cfg, a, log=QUIET)
    assert search.run(replace(cfg, stop_after_epoch=2), b, log=QUIET) is None
    assert len(search.read_records(b / "records.jsonl")) == 2 and not (b / "spec.json").exists()
    msgs = []
    search.run(cfg, b, log=msgs.append)  # the same command again resumes
    assert any("resuming" in m for m in msgs)
    done = json.loads((b / "summary.json").read_text())
    assert msgs[-1] == (f"derived net: LUT {done['lut_ms']:.3f} ms, target {done['target_ms']:.3f} ms: "
                        f"{done['target_status']}")
    assert (a / "spec.json").read_text() == (b / "spec.json").read_text()
    assert comparable(search.read_records(a / "records.jsonl")) == comparable(search.read_records(b / "records.jsonl"))
    ck_a = torch.load(a / "checkpoint.pt", weights_only=True)
    ck_b = torch.load(b / "checkpoint.pt", weights_only=True)
    for k, v in ck_a["net"].items():
        assert (torch.equal(v, ck_b["net"][k]) if isinstance(v, torch.Tensor) else v == ck_b["net"][k]), k
    # a different config is refused
    with pytest.raises(ValueError, match="different config.*lam"):
        search.run(replace(cfg, lam=0.2), b, log=QUIET)


@pytest.mark.slow
def test_killed_process_resumes_to_the_same_result(tmp_path):
    sets = [f"split_dir={tmp_path / 'splits'}", "epochs=4", "steps_per_epoch=3", "val_batches=1"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    search.run(apply_overrides(smoke(), sets), ref, log=QUIET)
    code = ("import sys; from tfnas_core.search import config as sc, loop as search; "
            "search.run(sc.apply_overrides(sc.smoke(), sys.argv[2:]), sys.argv[1], log=lambda m: None)")
    cmd = [sys.executable, "-c", code, str(killed), *sets]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 60
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(search.read_records(killed / "records.jsonl")) if (killed / "records.jsonl").exists() else 0
    assert done < 4, "the process finished before it could be killed"
    subprocess.run(cmd, env=env, check=True, timeout=120)
    assert (ref / "spec.json").read_text() == (killed / "spec.json").read_text()
    assert comparable(search.read_records(ref / "records.jsonl")) == comparable(search.read_records(killed / "records.jsonl"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    """A weight set to NaN (in the checkpoint the run resumes from) makes the first loss of epoch 2
    NaN: the run stops there, naming the step, and keeps the checkpoint of epoch 1.  (On a GPU the
    losses are checked at the end of the epoch instead, before it is saved: test_search_steps.py.)"""
    cfg = tiny(tmp_path)
    out = tmp_path / "run"
    assert search.run(replace(cfg, stop_after_epoch=1), out, log=QUIET) is None
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    ck["net"]["classifier.weight"][0, 0] = float("nan")
    torch.save(ck, out / "checkpoint.pt")
    with pytest.raises(search.SearchDiverged,
                       match=r"^loss is nan \(weight step\) at epoch 2 step 1;.*last good checkpoint \(epoch 1\)"):
        search.run(cfg, out, log=QUIET)
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["data_position"]["epoch"] == 1 and len(ck["records"]) == 1
    assert not (out / "spec.json").exists()


# ----------------------------------------------------------------------------- config, CLI


def test_overrides_coerce_and_refuse_unknown_keys():
    cfg = apply_overrides(smoke(), ["epochs=5", "lam=0.3", "elasticity=off", "target_ms=none", "subset=none",
                                    "second_path=gumbel", "lut=/x.json"])
    assert (cfg.epochs, cfg.lam, cfg.elasticity, cfg.target_ms, cfg.second_path, cfg.lut) == \
        (5, 0.3, False, None, "gumbel", "/x.json")
    with pytest.raises(ValueError, match="unknown search setting 'nope'"):
        apply_overrides(smoke(), ["nope=1"])
    with pytest.raises(ValueError, match="epochs=x: expected int"):
        apply_overrides(smoke(), ["epochs=x"])
    with pytest.raises(ValueError, match="second_path: unknown 'best'"):
        apply_overrides(smoke(), ["second_path=best"])
    with pytest.raises(ValueError, match="warmup_epochs"):
        apply_overrides(smoke(), ["warmup_epochs=9"])


def test_profiles():
    p = search_config.paper()
    assert (p.dataset, p.resolution, p.batch_size, p.epochs, p.warmup_epochs, p.target_ms, p.seed) == \
        ("imagenet-100", 224, 32, 90, 10, 15.0, 2)
    assert p.lut.endswith("official/latency_gpu.pkl") and p.train_list.endswith("effb0_train_cls_ratio0.8.txt")
    assert search_config.resolve(search_config.mini(), cuda_available=False).target_ms is None  # no LUT given: no file read
    m = search_config.resolve(search_config.mini(), False, search_config.load_lut(search_config.mini()))
    assert m.dataset == "fashion-mnist" and m.target_ms == pytest.approx(latency.load(CPU_LUT).predict(zoo.load("TF-NAS-B")), abs=1e-5)


def _main(argv, capsys):
    code = cli.main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("extra, needle", [
    (["--set", "nope=1"], "unknown search setting"),
    (["--set", "epochs=two"], "expected int"),
    (["--set", "objective=c3"], "objective: unknown"),
    (["--set", "lut=/nonexistent.pkl"], "no such latency table"),
    (["--set", "dataset=cifar10", "--set", "data_root=/nonexistent"], "download=true"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    code, stdout, stderr = _main(["search", "--profile", "smoke", "--out", str(out),
                                  "--set", f"split_dir={tmp_path / 's'}", *extra], capsys)
    assert code == 2 and stderr.count("\n") == 1 and needle in stderr and stdout == ""
    assert not (out / "config.json").exists()  # nothing written


def test_cli_runs_and_refuses_other_config(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["search", "--profile", "smoke", "--out", str(out), "--set", f"split_dir={tmp_path / 's'}",
            "--set", "steps_per_epoch=2", "--set", "val_batches=1", "--json"]
    code, stdout, _ = _main(base, capsys)
    assert code == 0 and json.loads(stdout)["spec"]["space"] == "tfnas"
    code, stdout, stderr = _main(base + ["--set", "seed=3"], capsys)
    assert code == 2 and "different config" in stderr and stderr.count("\n") == 1
