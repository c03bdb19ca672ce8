"""Reading latency tables: the official pickle (through the restricted unpickler) and our JSON
(``tfnas-lut/1``), told apart by content.  Every malformed table is refused with one line naming
the file and what is wrong; these tests pin each of those lines exactly."""
import json
import pickle
import struct
from collections import Counter, OrderedDict
from pathlib import Path

import pytest

from conftest import SHARED
from tfnas_core.latency import lut as latency
from tfnas_core.latency.lut import LUT, LUTError

WIDTHS = "widths must be integers in 1..100000"
FINITE = "latencies must be finite milliseconds"
FINGERPRINT = "malformed fingerprint (expected 'sentinels' mapping names to positive milliseconds)"


def _refusal(call) -> str:
    with pytest.raises(LUTError) as e:
        call()
    assert "\n" not in str(e.value)
    return str(e.value)


def _pickle(tmp_path, obj, protocol=pickle.DEFAULT_PROTOCOL) -> Path:
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    return p


# ----------------------------------------------------------------------------- the official pickle


def test_a_pickle_loads_as_the_table_it_holds(tmp_path):
    """Base may be 0; a key's narrow end may dip below 0 ms (the official linear fits do) as long as
    its widest width costs time; widths 1 and 100000 are the bounds; integers become floats; the
    entries before and after 'base' are all read."""
    table = OrderedDict([("a", {5: 1}), ("base", 0), ("k", {100000: 0.5, 1: -0.24})])
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        p = _pickle(tmp_path, table, protocol)
        lut = latency.load(p)
        assert lut == LUT(0.0, {"a": {5: 1.0}, "k": {100000: 0.5, 1: -0.24}}, {"format": "official-pkl"}, str(p))
        assert type(lut.base) is float and type(lut.entries["a"][5]) is float
        assert latency.load_pickle(p) == lut
    assert latency.load(_pickle(tmp_path, {"base": 0.5, "k": {3: 2.0}})).base == 0.5  # a plain dict too


@pytest.mark.parametrize("obj, message", [
    ([1.0], "expected a mapping at the top level, got list"),
    ("x" * 3, "expected a mapping at the top level, got str"),
    ({"k": {2: 1.0}}, "no numeric 'base' entry"),
    ({"base": "1.0", "k": {2: 1.0}}, "no numeric 'base' entry"),
    ({"base": True, "k": {2: 1.0}}, "no numeric 'base' entry"),
    ({"base": 1.0, 5: {2: 1.0}}, "entry 5 is not a string key with a width table"),
    ({"base": 1.0, "k": [1.0]}, "entry 'k' is not a string key with a width table"),
    ({"base": 1.0, "k": {}}, "entry k must map integer widths to numbers"),
    ({"base": 1.0, "k": {"2": 1.0}}, "entry k must map integer widths to numbers"),
    ({"base": 1.0, "k": {2.0: 1.0}}, "entry k must map integer widths to numbers"),
    ({"base": 1.0, "k": {2: "1.0"}}, "entry k must map integer widths to numbers"),
    ({"base": 1.0, "k": {2: True}}, "entry k must map integer widths to numbers"),
    ({"base": 1.0, "k": {0: 1.0}}, f"entry k has width 0; {WIDTHS}"),
    ({"base": 1.0, "k": {100001: 1.0}}, f"entry k has width 100001; {WIDTHS}"),
    ({"base": 1.0, "k": {True: 1.0}}, f"entry k has width True; {WIDTHS}"),
    ({"base": 1.0, "k": {2: 1.0, 3: float("nan")}}, f"entry k[3] is nan; {FINITE}"),
    ({"base": 1.0, "k": {2: float("-inf"), 3: 1.0}}, f"entry k[2] is -inf; {FINITE}"),
    ({"base": 1.0, "k": {2: -0.24, 3: 0.0}}, "entry k gives 0.0 ms at its widest width 3; a block must cost a positive time"),
    ({"base": 1.0, "k": {4: -0.5, 2: 1.0}}, "entry k gives -0.5 ms at its widest width 4; a block must cost a positive time"),
    ({"base": -1.0, "k": {2: 1.0}}, f"base is -1.0; {FINITE} >= 0.0"),
    ({"base": float("inf"), "k": {2: 1.0}}, f"base is inf; {FINITE} >= 0.0"),
])
def test_a_malformed_pickle_is_refused_in_one_line(tmp_path, obj, message):
    p = _pickle(tmp_path, obj)
    assert _refusal(lambda: latency.load(p)) == f"{p}: {message}"


def test_a_pickle_naming_any_class_but_ordereddict_is_refused(tmp_path):
    p = _pickle(tmp_path, {"base": 1.0, "k": Counter({2: 1.0})})
    assert _refusal(lambda: latency.load(p)) == (
        f"{p}: refusing to load this pickle: it references collections.Counter; a latency table may hold "
        "only dicts, numbers and strings")
    p = _pickle(tmp_path, {"base": 1.0, "k": {2: 1.0}, "when": Path("/x")}, 2)
    assert _refusal(lambda: latency.load(p)).startswith(f"{p}: refusing to load this pickle: it references pathlib.")


def test_a_pickle_with_persistent_ids_is_refused(tmp_path):
    class Referring(pickle.Pickler):
        def persistent_id(self, obj):
            return "elsewhere" if obj == "ref" else None

    p = tmp_path / "t.pkl"
    with open(p, "wb") as f:
        Referring(f, protocol=2).dump({"base": 1.0, "k": "ref"})
    assert _refusal(lambda: latency.load(p)) == f"{p}: refusing to load this pickle: it uses persistent ids"


def test_a_file_that_is_no_pickle_is_refused_naming_the_error(tmp_path):
    p = tmp_path / "t.pkl"
    p.write_bytes(b"\x80\x04garbage")
    assert _refusal(lambda: latency.load(p)) == (
        f"{p}: not a readable latency pickle nor a tfnas-lut/1 JSON table (UnpicklingError: pickle data was truncated)")
    # the error's text is cut at 80 characters (this one has 82)
    s = b"a" * 100000 + b"\xe2\x82"
    p.write_bytes(b"X" + struct.pack("<I", len(s)) + s + b".")
    assert _refusal(lambda: latency.load(p)) == (
        f"{p}: not a readable latency pickle nor a tfnas-lut/1 JSON table (UnicodeDecodeError: "
        "'utf-8' codec can't decode bytes in position 100000-100001: unexpected end of da)")


def test_missing_or_unreadable_files(tmp_path, monkeypatch):
    p = tmp_path / "absent.pkl"
    assert _refusal(lambda: latency.load(p)) == f"{p}: no such latency table"
    assert _refusal(lambda: latency.load(tmp_path)) == f"{tmp_path}: no such latency table"  # a folder
    assert _refusal(lambda: latency.load_pickle(p)) == f"{p}: cannot read (No such file or directory)"
    assert _refusal(lambda: latency.load_json(p)) == f"{p}: cannot read latency table (No such file or directory)"
    q = _pickle(tmp_path, {"base": 1.0, "k": {2: 1.0}})

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)  # a file there but not readable (chmod does not stop root)
    assert _refusal(lambda: latency.load(q)) == f"{q}: cannot read (Permission denied)"


def test_the_official_tables_load_as_official_pickles():
    for name, keys in (("latency_gpu.pkl", 66), ("latency_cpu.pkl", 66)):
        p = SHARED / "reference" / "official" / name
        if not p.is_file():
            pytest.skip(f"the official table is not at {p}")
        lut = latency.load(p)
        assert len(lut.entries) == keys and lut.provenance == {"format": "official-pkl"} and lut.source == str(p)
        assert lut.measured == {} and lut.drift_sentinels == {} and lut.base > 0


# ----------------------------------------------------------------------------- our JSON


def _json(tmp_path, d, raw: str | None = None) -> Path:
    p = tmp_path / "t.json"
    p.write_text(raw if raw is not None else json.dumps(d))
    return p


def _table(**over):
    d = {"format": "tfnas-lut/1", "provenance": {"device": "cpu"}, "base": 1.0,
         "entries": {"k": {"widths": [2, 4], "ms": [0.1, 0.2, 0.3]}}}
    d.update(over)
    return d


def _entry(**e):
    return _table(entries={"k": e})


def test_a_json_table_loads_with_its_measured_points_and_drift_sentinels(tmp_path):
    d = _table(base=0, entries={"k": {"widths": [2, 4], "ms": [-0.1, 0.2, 0.3], "measured": {"2": -0.1, "4": 0.3}},
                                "one": {"widths": [100000, 100000], "ms": [0.5]}, "low": {"widths": [1, 1], "ms": [2]}},
               fingerprint={"sentinels": {"a": 0.5, "b": 7}})
    p = _json(tmp_path, d)
    lut = latency.load(p)
    assert lut == LUT(0.0, {"k": {2: -0.1, 3: 0.2, 4: 0.3}, "one": {100000: 0.5}, "low": {1: 2.0}}, {"device": "cpu"},
                      str(p), {"k": {2: -0.1, 4: 0.3}}, {"sentinels": {"a": 0.5, "b": 7}})
    assert type(lut.base) is float and type(lut.entries["low"][1]) is float
    assert latency.load_json(p) == lut
    # provenance, drift sentinels (field "fingerprint") and measured points are optional; an empty one is none
    d = _table()
    del d["provenance"]
    p = _json(tmp_path, d)
    assert latency.load(p) == LUT(1.0, {"k": {2: 0.1, 3: 0.2, 4: 0.3}}, {}, str(p), {}, {})
    p = _json(tmp_path, _table(fingerprint={}))
    assert latency.load(p).drift_sentinels == {}


@pytest.mark.parametrize("d, message", [
    ({"base": 1.0, "entries": {}}, "not a tfnas-lut/1 latency table (missing or wrong 'format')"),
    (_table(format="tfnas-lut/2"), "not a tfnas-lut/1 latency table (missing or wrong 'format')"),
    (_table(entries=None), "'entries' must be an object mapping keys to width tables"),
    (_table(entries=[]), "'entries' must be an object mapping keys to width tables"),
    (_table(provenance=[]), "'provenance' must be an object"),
    ({k: v for k, v in _table().items() if k != "base"}, "no 'base' entry"),
    (_table(base=-1), f"base is -1; {FINITE} >= 0.0"),
    (_table(base="1"), f"base is '1'; {FINITE} >= 0.0"),
    (_table(base=True), f"base is True; {FINITE} >= 0.0"),
    (_table(entries={"k": [2, 4]}), "entry k must be an object with lists 'widths' and 'ms'"),
    (_entry(widths="ab", ms=[0.1, 0.2]), "entry k must be an object with lists 'widths' and 'ms'"),
    (_entry(widths=[2, 4], ms="xyz"), "entry k must be an object with lists 'widths' and 'ms'"),
    (_entry(widths=[2, 4]), "entry k must be an object with lists 'widths' and 'ms'"),
    (_entry(ms=[0.1]), "entry k must be an object with lists 'widths' and 'ms'"),
    (_entry(widths=[2, 3, 4], ms=[0.1, 0.2, 0.3]), "entry k: 'widths' must be [lowest, highest]"),
    (_entry(widths=[2], ms=[0.1]), "entry k: 'widths' must be [lowest, highest]"),
    (_entry(widths=[0, 2], ms=[0.1, 0.2, 0.3]), f"entry k has width 0; {WIDTHS}"),
    (_entry(widths=[2, 2.5], ms=[0.1]), f"entry k has width 2.5; {WIDTHS}"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2]), "entry k lists 2 values for widths 2..4"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3, 0.4]), "entry k lists 4 values for widths 2..4"),
    (_entry(widths=[5, 4], ms=[]), "entry k: widths [5, 4] are out of order"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, "x"]), f"entry k[4] is 'x'; {FINITE}"),
    (_entry(widths=[2, 4], ms=[0.1, None, 0.3]), f"entry k[3] is None; {FINITE}"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, -0.1]), "entry k gives -0.1 ms at its widest width 4; a block must cost a positive time"),
    (_entry(widths=[2, 2], ms=[0]), "entry k gives 0.0 ms at its widest width 2; a block must cost a positive time"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3], measured=[2]), "entry k: 'measured' must map widths to milliseconds"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3], measured={"a": 0.1}), "entry k: measured width 'a' is not an integer"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3], measured={"-2": 0.1}), "entry k: measured width '-2' is not an integer"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3], measured={"0": 0.1}), f"entry k (measured) has width 0; {WIDTHS}"),
    (_entry(widths=[2, 4], ms=[0.1, 0.2, 0.3], measured={"3": "x"}), f"entry k measured[3] is 'x'; {FINITE}"),
    (_table(fingerprint=[1]), FINGERPRINT),
    (_table(fingerprint={"x": 1}), FINGERPRINT),
    (_table(fingerprint={"sentinels": [1.0]}), FINGERPRINT),
    (_table(fingerprint={"sentinels": {"a": 1.0, "b": 0}}), FINGERPRINT),
    (_table(fingerprint={"sentinels": {"a": -1.0}}), FINGERPRINT),
    (_table(fingerprint={"sentinels": {"a": True}}), FINGERPRINT),
    (_table(fingerprint={"sentinels": {"a": "1"}}), FINGERPRINT),
])
def test_a_malformed_json_table_is_refused_in_one_line(tmp_path, d, message):
    p = _json(tmp_path, d)
    assert _refusal(lambda: latency.load(p)) == f"{p}: {message}"
    assert _refusal(lambda: latency.load_json(p)) == f"{p}: {message}"


def test_json_that_is_not_an_object_is_refused(tmp_path):
    p = _json(tmp_path, [1])  # latency.load reads it as a pickle: only "{" means JSON
    assert _refusal(lambda: latency.load_json(p)) == f"{p}: not a tfnas-lut/1 latency table (missing or wrong 'format')"


@pytest.mark.parametrize("raw, message", [
    ('{"format": "tfnas-lut/1", "base": 1.0, "entries": {"k": {"widths": [2, 3], "ms": [0.1, NaN]}}}', f"entry k[3] is nan; {FINITE}"),
    ('{"format": "tfnas-lut/1", "base": Infinity, "entries": {}}', f"base is inf; {FINITE} >= 0.0"),
    ('{"format": "tfnas-lut/1", "base": 1.0, "entries": {}, "fingerprint": {"sentinels": {"a": Infinity}}}', FINGERPRINT),
])
def test_json_non_finite_numbers_are_refused(tmp_path, raw, message):
    p = _json(tmp_path, None, raw)
    assert _refusal(lambda: latency.load(p)) == f"{p}: {message}"


# ----------------------------------------------------------------------------- JSON or pickle: by content


def test_load_tells_json_from_pickle_by_the_first_non_blank_byte(tmp_path):
    """Leading blanks (and a UTF-8 byte-order mark) are skipped within the first 64 bytes; ``{``
    there means JSON, anything else a pickle, whatever the file's name."""
    text = json.dumps(_table())
    p = tmp_path / "lut.pkl"  # the name does not decide
    p.write_text(" \t\r\n" * 15 + text)  # 60 blanks
    assert latency.load(p) == LUT(1.0, {"k": {2: 0.1, 3: 0.2, 4: 0.3}}, {"device": "cpu"}, str(p), {}, {})
    p.write_text(" " * 64 + text)  # the opening brace past the 64 bytes looked at: read as a pickle
    assert _refusal(lambda: latency.load(p)) == (
        f"{p}: not a readable latency pickle nor a tfnas-lut/1 JSON table (UnpicklingError: invalid load key, ' '.)")
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())  # a BOM: sent to the JSON reader, which names it
    assert _refusal(lambda: latency.load(p)).startswith(f"{p}: not valid JSON (Unexpected UTF-8 BOM")
    # a pickle whose second byte is "{" (protocol 1: X, then a 123-byte string) is still a pickle
    q = _pickle(tmp_path, "{" * 123, 1)
    assert q.read_bytes()[:2] == b"X{"
    assert _refusal(lambda: latency.load(q)) == f"{q}: expected a mapping at the top level, got str"
