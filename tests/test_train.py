"""Retraining (Appendix B recipe): profiles, schedule, smoke run, resume, NaN stop, DDP, CLI errors."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core.nn import flops
from tfnas_core.train import config as profiles
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo

QUIET = lambda m: None  # noqa: E731
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tfnas_core", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    result = train.run(zoo.load("TF-NAS-D"), profiles.smoke(), out, log=QUIET)
    return out, result


# ----------------------------------------------------------------------------- profiles


def test_overrides_coerce_types_and_refuse_unknown_keys():
    cfg = profiles.apply_overrides(profiles.smoke(), ["epochs=5", "lr=0.3", "amp=yes", "train_subset=none",
                                                      "data_root=/x"])
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.train_subset, cfg.data_root) == (5, 0.3, True, None, "/x")
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        profiles.apply_overrides(cfg, ["epoch=3"])
    with pytest.raises(ValueError, match="expected int"):
        profiles.apply_overrides(cfg, ["epochs=three"])
    with pytest.raises(ValueError, match="key=value"):
        profiles.apply_overrides(cfg, ["epochs"])


def test_resolve_follows_appendix_b():
    paper = profiles.resolve(profiles.paper(), zoo.load("TF-NAS-A"), cuda_available=True)
    assert (paper.lr, paper.batch_size, paper.epochs, paper.warmup_epochs) == (0.2, 512, 250, 5.0)
    assert (paper.momentum, paper.wd, paper.label_smoothing, paper.grad_clip) == (0.9, 1e-5, 0.1, 5.0)
    assert paper.dropout == 0.2 and paper.amp and paper.device == "cuda"
    half = profiles.resolve(replace(profiles.paper(), batch_size=256, device="cpu"), zoo.load("TF-NAS-D"),
                            cuda_available=False)
    assert half.lr == pytest.approx(0.1)  # linear scaling rule
    assert half.dropout == 0.1  # the 10 ms models (Appendix B)
    assert half.device == "cpu" and half.amp is False  # no mixed precision on CPU
    d = zoo.load("TF-NAS-D")
    changed = d.with_mids([m + 1 if i == 0 else m for i, m in enumerate(d.mids)])
    assert profiles.resolve(profiles.paper(), changed, True).dropout == 0.2  # not the published model


def test_paper_without_cuda_is_refused_unless_the_cpu_is_asked_for():
    """No silent CPU: the paper recipe on a machine without CUDA needs device=cpu said explicitly."""
    with pytest.raises(ValueError, match="no CUDA device.*device=cpu explicitly"):
        profiles.resolve(profiles.paper(), zoo.load("TF-NAS-A"), cuda_available=False)
    assert profiles.resolve(replace(profiles.paper(), device="cpu"), zoo.load("TF-NAS-A"), False).device == "cpu"
    rehearsal = replace(profiles.paper(), profile="paper+rehearsal")  # launch.py's budget: CUDA where present
    assert profiles.resolve(rehearsal, zoo.load("TF-NAS-A"), False).device == "cpu"


def test_lr_schedule_warms_up_linearly_then_cosine_to_zero():
    total, warm = 100, 10
    f = [train.lr_factor(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:10], f[1:10]))
    assert f[10] == pytest.approx(1.0) and f[55] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 1e-2
    assert train.lr_factor(total, total, warm) == pytest.approx(0.0)


# ----------------------------------------------------------------------------- smoke run


def test_smoke_run_writes_config_records_result(smoke_run):
    out, result = smoke_run
    spec = zoo.load("TF-NAS-D")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["profile"] == "smoke" and cfg["dropout"] == 0.1 and cfg["lr"] == 0.1 and cfg["device"] == "cpu"
    rows = list(csv.DictReader((out / "records.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == list(train.RECORD_FIELDS)
    for r in rows:
        assert all(math.isfinite(float(v)) for v in r.values())
        assert 0 <= float(r["val_top1"]) <= float(r["val_top5"]) <= 100 and float(r["epoch_s"]) > 0
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])  # cosine decays
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    saved = json.loads((out / "result.json").read_text())
    assert saved == result
    assert result["top1"] > 20  # 10 learnable classes: chance is 10 %
    assert result["top1"] == pytest.approx(float(rows[-1]["val_top1"]), abs=1e-3)
    assert result["flops_m"] == pytest.approx(flops.count_flops(spec), abs=1e-3)
    assert 0 < result["proxy_flops_m"] < result["flops_m"] / 100
    assert 0 < result["params_m"] < flops.count_params(spec) and result["wall_s"] > 0


def test_resume_after_interruption_equals_uninterrupted(smoke_run, tmp_path):
    _, full = smoke_run
    spec, out = zoo.load("TF-NAS-D"), tmp_path / "run"
    assert train.run(spec, replace(profiles.smoke(), stop_after_epoch=1), out, log=QUIET) is None
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (out / "result.json").exists()
    resumed = train.run(spec, profiles.smoke(), out, log=QUIET)  # the same command again
    for key in ("top1", "top5", "val_loss", "rank_digests"):
        assert resumed[key] == full[key], key
    rows = list(csv.DictReader((out / "records.csv").open()))
    assert [r["val_loss"] for r in rows] == [r["val_loss"] for r in csv.DictReader((smoke_run[0] / "records.csv").open())]


@pytest.mark.slow
def test_killed_cli_run_resumes_with_the_same_command(tmp_path):
    import time

    out = tmp_path / "run"
    args = ["train", "zoo:TF-NAS-D", "--profile", "smoke", "--out", str(out), "--set", "epochs=4", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tfnas_core", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    killed_at = torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]
    assert killed_at < 4 and not (out / "result.json").exists()
    p = _cli(*args)
    assert p.returncode == 0, p.stderr
    resumed = json.loads(p.stdout)
    full = train.run(zoo.load("TF-NAS-D"), replace(profiles.smoke(), epochs=4), tmp_path / "full", log=QUIET)
    for key in ("top1", "top5", "val_loss", "rank_digests"):
        assert resumed[key] == full[key], key


def test_resume_refuses_a_different_config(smoke_run):
    out, _ = smoke_run
    with pytest.raises(ValueError, match="differs in: lr"):
        train.run(zoo.load("TF-NAS-D"), replace(profiles.smoke(), lr=0.5), out, log=QUIET)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = profiles.smoke()
    steps_per_epoch = cfg.train_subset // cfg.batch_size

    class PoisonAfter(torch.nn.CrossEntropyLoss):
        calls = 0

        def forward(self, logits, y):
            PoisonAfter.calls += 1
            loss = super().forward(logits, y)
            return loss * float("nan") if PoisonAfter.calls > steps_per_epoch + 2 else loss

    monkeypatch.setattr(train, "make_criterion", lambda c: PoisonAfter(label_smoothing=c.label_smoothing))
    with pytest.raises(train.TrainingDiverged, match=r"epoch 2 step 3.*checkpoint \(epoch 1\)"):
        train.run(zoo.load("TF-NAS-D"), cfg, tmp_path, log=QUIET)
    st = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert st["epoch"] == 1 and all(torch.isfinite(v).all() for v in st["model"].values() if v.is_floating_point())
    assert not (tmp_path / "result.json").exists()


# ----------------------------------------------------------------------------- DDP


@pytest.mark.slow
def test_two_process_ddp_on_cpu_agrees(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tfnas_core", "train", "zoo:TF-NAS-D", "--profile", "smoke", "--out", str(out), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2
    assert len(result["rank_digests"]) == 2 and result["rank_digests"][0] == result["rank_digests"][1]
    assert json.loads(p.stdout) == result  # only rank 0 printed
    assert len(list(csv.DictReader((out / "records.csv").open()))) == 3
    assert result["top1"] > 15


# ----------------------------------------------------------------------------- CLI errors


def test_cli_missing_spec_exits_2_with_one_line(tmp_path):
    p = _cli("train", str(tmp_path / "nope.json"), "--profile", "smoke", "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such spec file" in p.stderr
    assert not (tmp_path / "o").exists()


def test_cli_unknown_key_and_missing_imagenet_exit_2(tmp_path):
    p = _cli("train", "zoo:TF-NAS-B", "--profile", "smoke", "--out", str(tmp_path / "o"), "--set", "nope=1")
    assert p.returncode == 2 and "unknown config key 'nope'" in p.stderr and p.stderr.count("\n") == 1
    p = _cli("train", "zoo:TF-NAS-B", "--profile", "paper", "--out", str(tmp_path / "o"),
             "--set", f"data_root={tmp_path / 'imagenet'}", "--set", "device=cpu")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert str(tmp_path / "imagenet" / "train") in p.stderr and "image-net.org" in p.stderr
    assert not (tmp_path / "o").exists()


def test_channels_last_is_the_same_function_and_gradients():
    """``channels_last`` (the default) changes kernels, not results: loss and every gradient agree
    with the default layout in float64, drop-connect and dropout drawn from the same seed."""
    from tfnas_core.nn import model
    from tfnas_core.arch.space import Proxy

    proxy = Proxy(16, 0.25, 1, 10, 1)
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    y = torch.tensor([1, 2, 3, 4])
    results = []
    for layout in (False, True):
        cfg = replace(profiles.smoke(), channels_last=layout)
        torch.manual_seed(0)
        net = model.build(zoo.load("TF-NAS-A"), proxy, dropout=0.2, drop_connect=0.2).double()
        net = net.to(memory_format=train._layout(cfg)).train()
        torch.manual_seed(1)
        loss = torch.nn.functional.cross_entropy(net(x.to(memory_format=train._layout(cfg))), y)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in net.parameters()]))
    assert train._layout(profiles.smoke()) is torch.channels_last
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
