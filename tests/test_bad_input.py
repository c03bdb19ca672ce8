"""Bad input, by input kind: one line on stderr, exit 2, nothing written, nothing wrong accepted.

The cases of the 396-case reliability probe (issue 14), grouped by where the input enters:
spec files, latency tables, data files, config values (``--set``), CLI flags.  Config values
are fuzzed by construction: every numeric field of both config dataclasses, whatever it is
called, is tried with NaN, infinities and -1.  Checkpoints, locks and leftovers are in
``test_run_safety.py``.
"""
from __future__ import annotations

import collections
import gzip
import json
import pickle
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tfnas_core.utils import checks
from tfnas_core.data import datasets as data
from tfnas_core.latency import lut as latency
from tfnas_core.train import config as profiles
from tfnas_core.search import config as search_config
from tfnas_core.search import data as search_data
from tfnas_core.arch import zoo
from conftest import refused
from conftest import run_cli as cli
from tfnas_core.train.config import TrainConfig
from tfnas_core.search.config import SearchConfig

ROOT = Path(__file__).resolve().parents[1]
CPU_LUT = ROOT / "tfnas_core" / "luts" / "cpu_local.json"




def _deep(n: int = 100_000) -> bytes:
    return b"[" * n + b"]" * n


# ----------------------------------------------------------------------------- spec files


def _spec_dict() -> dict:
    return zoo.load("TF-NAS-B").to_dict()


def _with(d: dict, **kw) -> bytes:
    return json.dumps({**d, **kw}).encode()


def _first_mid_as(text: str) -> bytes:
    d = _spec_dict()
    raw = json.dumps(d)
    old = f'"mid": {d["stages"][0][0]["mid"]}'
    assert old in raw
    return raw.replace(old, f'"mid": {text}', 1).encode()


SPEC_CASES = {
    "deep-nesting": (_deep(), "nested too deeply"),
    "space-list": (_with(_spec_dict(), space=["tfnas"]), "space: expected a string"),
    "space-missing": (json.dumps({"stages": []}).encode(), "space: missing"),
    "not-utf8": (b"\xff\xfe{}", "not UTF-8"),
    "gzip-renamed": (gzip.compress(json.dumps(_spec_dict()).encode()), "not UTF-8"),
    "not-json": (b"{name: x}", "not valid JSON"),
    "array": (b"[1, 2]", "expected a JSON object"),
    "huge-mid": (_first_mid_as("9" * 5000), "unreadable JSON value"),
    "float-mid": (_first_mid_as("32.5"), "expected an integer"),
    "nan-mid": (_first_mid_as("NaN"), "expected an integer"),
    "stages-dict": (_with(_spec_dict(), stages={}), "stages: missing or not a list"),
}


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_file_refused_naming_the_file(tmp_path, capsys, case):
    raw, needle = SPEC_CASES[case]
    p = tmp_path / "spec.json"
    p.write_bytes(raw)
    refused(cli(["profile", p], capsys), str(p), needle)


# ----------------------------------------------------------------------------- latency tables


def _lut_json() -> dict:
    return json.loads(CPU_LUT.read_text())


def _lut_with(change) -> bytes:
    d = _lut_json()
    change(d)
    return json.dumps(d).encode()  # Python writes NaN / Infinity tokens, as the probe's files had


def _first(d: dict) -> dict:
    return next(iter(d["entries"].values()))


def _all_negative(d: dict) -> None:
    for e in d["entries"].values():
        e["ms"] = [-abs(v) - 0.01 for v in e["ms"]]
        e.pop("measured", None)


def _pickle_lut(base: float, value: float, protocol: int = 4) -> bytes:
    lut = latency.load(CPU_LUT)
    d = collections.OrderedDict(base=base)
    for k, t in lut.entries.items():
        d[k] = dict(t)
    d[next(iter(lut.entries))][max(lut.entries[next(iter(lut.entries))])] = value
    return pickle.dumps(d, protocol=protocol)


LUT_CASES = {
    "nan-value": (_lut_with(lambda d: _first(d)["ms"].__setitem__(3, float("nan"))), "finite"),
    "inf-value": (_lut_with(lambda d: _first(d)["ms"].__setitem__(3, float("inf"))), "finite"),
    "nan-base": (_lut_with(lambda d: d.__setitem__("base", float("nan"))), "base"),
    "negative-base": (_lut_with(lambda d: d.__setitem__("base", -1.0)), "base"),
    "all-negative": (_lut_with(_all_negative), "positive time"),
    "string-value": (_lut_with(lambda d: _first(d)["ms"].__setitem__(0, "1.0")), "finite"),
    "nan-measured": (_lut_with(lambda d: _first(d)["measured"].__setitem__(
        next(iter(_first(d)["measured"])), float("nan"))), "finite"),
    "entries-list": (_lut_with(lambda d: d.__setitem__("entries", list(d["entries"].values()))), "'entries'"),
    "entry-list": (_lut_with(lambda d: d["entries"].__setitem__(next(iter(d["entries"])), [1, 2])), "'widths'"),
    "widths-reversed": (_lut_with(lambda d: _first(d).__setitem__("widths", _first(d)["widths"][::-1])), "widths"),
    "widths-float": (_lut_with(lambda d: _first(d).__setitem__("widths", [1.5, 2])), "width"),
    "deep-nesting": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    "deep-list": (_deep(), "not a readable latency pickle"),
    "not-utf8": (b"{\xff\xfe}", "not UTF-8"),
    "gzip-renamed": (gzip.compress(CPU_LUT.read_bytes()), "not a readable latency pickle"),
    "pickle-nan": (_pickle_lut(2.0, float("nan")), "finite"),
    "pickle-inf": (_pickle_lut(2.0, float("inf")), "finite"),
    "pickle-negative-base": (_pickle_lut(-3.0, 1.0), "base"),
    "pickle-code": (b"cos\nsystem\n(S'true'\ntR.", "refusing to load this pickle"),
}


@pytest.mark.parametrize("case", LUT_CASES)
def test_lut_refused_naming_the_file(tmp_path, capsys, case):
    raw, needle = LUT_CASES[case]
    p = tmp_path / "lut.json"
    p.write_bytes(raw)
    refused(cli(["profile", "zoo:TF-NAS-B", "--lut", p], capsys), str(p), needle)
    refused(cli(["scale", "zoo:TF-NAS-B", "--lut", p, "--target-ms", "5"], capsys), str(p), needle)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_lut_of_every_protocol_loads_and_prints_strict_json(tmp_path, capsys, protocol):
    p = tmp_path / "lut.pkl"
    p.write_bytes(_pickle_lut(2.0, 1.0, protocol))
    code, out, err = cli(["profile", "zoo:TF-NAS-B", "--lut", p, "--json"], capsys)
    assert code == 0, err

    def no_constants(name):
        raise AssertionError(f"{name} in JSON output")

    assert json.loads(out, parse_constant=no_constants)["lut_ms"] > 0


def test_lut_not_covering_the_space_is_refused_before_the_split_is_written(tmp_path, capsys):
    splits = tmp_path / "splits"
    refused(cli(["search", "--profile", "smoke", "--out", tmp_path / "s", "--set", f"split_dir={splits}",
                 "--set", "space=mbv2"], capsys), "does not cover space 'mbv2'")
    assert not splits.exists() and not (tmp_path / "s").exists()


def test_official_tables_dip_below_zero_only_at_narrow_widths(official_lut):
    """Why negative entries are allowed at all: the official per-key linear fits go below 0 ms."""
    negative = [(k, w) for k, t in official_lut.entries.items() for w, v in t.items() if v < 0]
    assert negative and all(w < max(official_lut.entries[k]) // 2 for k, w in negative)
    assert all(official_lut.predict(s) > 0 for s in zoo.load_all().values() if s.space != "mbv2")


# ----------------------------------------------------------------------------- data files


def _idx(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


def fake_fmnist(folder: Path, n_train: int = 120, n_test: int = 40, gz: bool = True) -> Path:
    """A tiny Fashion-MNIST folder in the real file layout."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)}
    for name, a in arrays.items():
        raw = _idx(a)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def _relabel(folder: Path, labels: np.ndarray) -> None:
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels.astype(np.uint8))))


DATA_CASES = {
    "short-labels": (lambda f: _relabel(f, np.arange(100) % 10), "100 labels beside 120 images"),
    "label-255": (lambda f: _relabel(f, np.r_[np.arange(119) % 10, 255]), "label 255 outside 0..9"),
    "missing-file": (lambda f: (f / "t10k-labels-idx1-ubyte.gz").unlink(), "no Fashion-MNIST file t10k-labels"),
    "truncated-gz": (lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
        (f / "train-images-idx3-ubyte.gz").read_bytes()[:500]), "truncated gzip"),
    "not-gzip": (lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(b"garbage" * 10), "Not a gzipped file"),
    "not-idx": (lambda f: (f / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01")),
                "not an unsigned-byte IDX"),
    "zero-byte-gz": (lambda f: (f / "t10k-images-idx3-ubyte.gz").write_bytes(b""), "not an unsigned-byte IDX"),
}


@pytest.mark.parametrize("case", DATA_CASES)
def test_data_files_refused_for_search_and_train_writing_nothing(tmp_path, capsys, case):
    spoil, needle = DATA_CASES[case]
    root = fake_fmnist(tmp_path / "fm")
    spoil(root)
    common = ["--set", "dataset=fashion-mnist", "--set", f"data_root={root}"]
    out, splits = tmp_path / "s", tmp_path / "splits"
    refused(cli(["search", "--profile", "smoke", "--out", out, "--set", f"split_dir={splits}", *common], capsys),
            needle)
    refused(cli(["train", "zoo:TF-NAS-B", "--profile", "smoke", "--out", tmp_path / "t", *common], capsys), needle)
    assert not out.exists() and not splits.exists() and not (tmp_path / "t").exists()


def test_explicit_data_root_never_falls_back(tmp_path, capsys):
    err = refused(cli(["search", "--profile", "smoke", "--out", tmp_path / "s", "--set", "dataset=fashion-mnist",
                       "--set", "data_root=/nonexistent"], capsys), "data_root /nonexistent")
    assert "and 3 more" in err and not (tmp_path / "s").exists()


def test_a_consistent_data_root_is_read(tmp_path):
    d = data.fashion_mnist(fake_fmnist(tmp_path / "fm", gz=False))
    assert d["train_x"].shape == (120, 1, 28, 28) and d["test_y"].tolist()[:3] == [0, 1, 2]


def test_split_too_small_for_a_batch_leaves_no_split_file(tmp_path, capsys):
    splits = tmp_path / "splits"
    refused(cli(["search", "--profile", "smoke", "--out", tmp_path / "s", "--set", f"split_dir={splits}",
                 "--set", "synthetic_n=20"], capsys), "cannot fill a batch of 16")
    assert not splits.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("raw, needle", [(_deep(), "nested too deeply"), (b"\x8b\xff", "not UTF-8"),
                                         (b"[]", "not a split file"), (b"", "not valid JSON")])
def test_broken_split_file_is_named(tmp_path, raw, needle):
    cfg = search_config.check(replace(search_config.smoke(), split_dir=str(tmp_path)))
    path = tmp_path / f"{search_data.split_name(cfg)}-{cfg.seed}.json"
    path.write_bytes(raw)
    with pytest.raises(data.DataError, match=needle) as e:
        search_data.make(cfg)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("lines, needle", [(["n01/a.JPEG 0", "n02/b.JPEG 100"], "label outside 0..99"),
                                           (["n01/a.JPEG -1"], "label outside 0..99"), ([], "empty ImageNet-100 list")])
def test_imagenet100_list_labels_are_checked(tmp_path, lines, needle):
    (tmp_path / "train.txt").write_text("".join(line + "\n" for line in lines))
    (tmp_path / "val.txt").write_text("n01/c.JPEG 0\n")
    cfg = replace(search_config.paper(), data_root=str(tmp_path), train_list=str(tmp_path / "train.txt"),
                  val_list=str(tmp_path / "val.txt"), split_dir=str(tmp_path / "splits"))
    with pytest.raises(data.DataError, match=needle) as e:
        search_data.make(cfg)
    assert str(tmp_path / "train.txt") in str(e.value) and not (tmp_path / "splits").exists()


def test_bad_list_file_encoding_is_named(tmp_path):
    p = tmp_path / "list.txt"
    p.write_bytes(b"n01/a.JPEG 0\n\xff\xfe 1\n")
    with pytest.raises(data.DataError, match="not UTF-8"):
        search_data.read_list(p)


# ----------------------------------------------------------------------------- config values (--set)


CONFIGS = {"search": (SearchConfig, search_config), "train": (TrainConfig, profiles)}
FUZZ = ("nan", "inf", "-inf", "-1")


def _numeric_cases():
    for kind, (cls, _) in CONFIGS.items():
        for name in checks.numeric_fields(cls):
            for value in FUZZ:
                yield pytest.param(kind, name, value, id=f"{kind}-{name}={value}")


@pytest.mark.parametrize("kind, name, value", list(_numeric_cases()))
def test_every_numeric_setting_refuses_nan_inf_and_negative(kind, name, value):
    """By construction: a new numeric field is fuzzed here without anyone listing it."""
    cls, module = CONFIGS[kind]
    with pytest.raises(ValueError) as e:
        module.apply_overrides(module.smoke(), [f"{name}={value}"])
    assert name in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", CONFIGS)
def test_limits_table_declares_exactly_the_numeric_fields(kind):
    cls, module = CONFIGS[kind]
    assert set(module.LIMITS) == set(checks.numeric_fields(cls))
    for profile in module.PROFILES.values():
        module.check(profile())  # every profile is inside its own limits


def test_a_numeric_field_without_declared_limits_is_a_programming_error():
    @dataclass(frozen=True)
    class Knobs:
        rate: float = 0.1
        steps: int | None = None

    with pytest.raises(TypeError, match="Knobs.rate: no allowed range declared"):
        checks.check_fields(Knobs(), {"steps": checks.AT_LEAST_1})
    checks.check_fields(Knobs(), {"rate": checks.POSITIVE, "steps": checks.AT_LEAST_1})
    with pytest.raises(ValueError, match="steps must be an integer"):
        checks.check_fields(Knobs(steps=2.0), {"rate": checks.POSITIVE, "steps": checks.AT_LEAST_1})


def test_out_of_range_values_are_shown_without_failing_themselves():
    with pytest.raises(ValueError, match="seed must be in .* got an integer of 16610 bits"):
        checks.check_number("seed", 10**5000, checks.SEED)  # repr() of it would exceed the digit limit
    with pytest.raises(ValueError, match="lr must be finite and > 0, got nan"):
        checks.check_number("lr", float("nan"), checks.POSITIVE)
    with pytest.raises(ValueError, match="lr must be a number, got True"):
        checks.check_number("lr", True, checks.POSITIVE)


# The probe's settings that were accepted (rc 0) or crashed late; each is refused up front.
SETTING_CASES = [
    ("train", "grad_clip=-1", "grad_clip"), ("train", "stop_after_epoch=-1", "stop_after_epoch"),
    ("train", "train_subset=0", "train_subset"), ("train", "val_subset=0", "val_subset"),
    ("train", "threads=0", "threads"), ("train", "resolution=0", "resolution"),
    ("train", "label_smoothing=2", "label_smoothing"), ("train", "lr=-1", "lr"), ("train", "width_mult=0", "width_mult"),
    ("train", "stem_stride=3", "stem_stride"), ("train", "momentum=-1", "momentum"),
    ("train", "seed=99999999999999999999999", "seed"), ("train", "warmup_epochs=nan", "warmup_epochs"),
    ("train", "warmup_epochs=300", "warmup_epochs"),
    ("search", "t0=inf", "t0"), ("search", "lam=-1", "lam"), ("search", "warmup_epochs=-1", "warmup_epochs"),
    ("search", "target_ms=inf", "target_ms"), ("search", "w_lr=inf", "w_lr"), ("search", "synthetic_n=0", "synthetic_n"),
    ("search", "seed=99999999999999999999999", "seed"), ("search", "warmup_epochs=nan", "warmup_epochs"),
    ("search", "t_decay=1.5", "t_decay"), ("search", "a_beta1=1", "a_beta1"), ("search", "split_ratio=1", "split_ratio"),
    ("search", "epochs=" + "9" * 5000, "epochs"),
]


@pytest.mark.parametrize("kind, setting, field", SETTING_CASES, ids=[f"{k}-{s[:30]}" for k, s, _ in SETTING_CASES])
def test_cli_setting_refused_before_anything_is_written(tmp_path, capsys, kind, setting, field):
    out = tmp_path / "run"
    argv = (["search", "--profile", "smoke", "--set", f"split_dir={tmp_path / 'splits'}"] if kind == "search"
            else ["train", "zoo:TF-NAS-B", "--profile", "smoke"])
    refused(cli([*argv, "--out", out, "--set", setting], capsys), field)
    assert not out.exists() and not (tmp_path / "splits").exists()


@pytest.mark.parametrize("cmd", [["search", "--profile", "smoke"], ["train", "zoo:TF-NAS-B", "--profile", "smoke"]])
def test_device_cuda_without_a_gpu(tmp_path, capsys, cmd, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # runs on GPU machines too (no skip)
    refused(cli([*cmd, "--out", tmp_path / "run", "--set", "device=cuda"], capsys), "device=cuda")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, needle", [(b"[1, 2]", "expected a JSON object"),
                                             (b"{\n", "not valid JSON"), (_deep(), "nested too deeply")])
def test_broken_config_json_is_named(tmp_path, capsys, content, needle):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_bytes(content)
    refused(cli(["train", "zoo:TF-NAS-B", "--profile", "smoke", "--out", out], capsys),
            str(out / "config.json"), needle)
    assert (out / "config.json").read_bytes() == content


# ----------------------------------------------------------------------------- CLI flags


FLAG_CASES = [
    (["measure", "zoo:TF-NAS-B", "--batch", "0"], "--batch"), (["measure", "zoo:TF-NAS-B", "--repeats", "0"], "--repeats"),
    (["measure", "zoo:TF-NAS-B", "--threads", "0"], "--threads"), (["measure", "zoo:TF-NAS-B", "--warmup", "-1"], "--warmup"),
    (["measure", "zoo:TF-NAS-B", "--min-time", "inf"], "--min-time"),
    (["measure", "zoo:TF-NAS-B", "--min-time", "nan"], "--min-time"),
    (["measure", "zoo:TF-NAS-B", "--min-time", "-1"], "--min-time"),
    (["fidelity", "--lut", "x.json", "--repeats", "0"], "--repeats"),
    (["scale", "zoo:TF-NAS-B", "--lut", "x.json", "--target-ms", "nan"], "--target-ms"),
    (["scale", "zoo:TF-NAS-B", "--lut", "x.json", "--target-ms", "0"], "--target-ms"),
    (["scale", "zoo:TF-NAS-B", "--lut", "x.json", "--target-ms", "inf"], "--target-ms"),
    (["lut", "build", "--out", "x.json", "--step", "0"], "--step"),
    (["lut", "build", "--out", "x.json", "--repeats", "0"], "--repeats"),
    (["lut", "build", "--out", "x.json", "--batch", "-2"], "--batch"),
    (["profile"], "spec"), (["search", "--profile", "nope", "--out", "x"], "--profile"),
]


@pytest.mark.parametrize("argv, needle", FLAG_CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in FLAG_CASES])
def test_bad_flag_is_one_line_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    refused(cli(argv, capsys), needle)
    assert list(tmp_path.iterdir()) == []
