"""Tables 2/6/8/9/11 for the published architectures (the model-zoo notebook, ``python -m tfnas_core
zoo``): our FLOPs and LUT latency beside the paper's, and the latency measured here."""
from __future__ import annotations

import pandas as pd

from tfnas_core.arch import zoo
from tfnas_core.arch.space import Proxy
from tfnas_core.latency import measure
from tfnas_core.nn import flops


def zoo_table(lut_path: str | None, device: str | None = None, repeats: int = 20, min_time_s: float = 1.0,
              measure_on: bool = True, flops_convention: str = "official", details: bool = False,
              store=None) -> pd.DataFrame:
    """Tables 2/6/8/9/11 for the published architectures: our FLOPs and LUT latency beside the
    paper's, and the latency measured here with the LUT's error.

    Measured where the LUT was made (``measure.measure_setting``; ``device`` None: the LUT's device
    when it is here, else the CPU at batch 1), named in ``measured_on``, all nets interleaved in one
    timing (``measure.measure_many``: drift hits every row alike); measured elsewhere than
    the LUT (``measured_on`` says so, e.g. ``"cpu b1, not the LUT's cuda b32"``) ``lut_error_pct`` is
    left empty: the two are not comparable.  When the LUT carries drift sentinels for this setting (the
    CPU table), its sentinels join the rounds: ``measured_ms_lut_base`` = ``measured_ms`` / ``speed_factor``
    is the latency in the LUT's time base and ``lut_error_lut_base_pct`` the LUT's error against it.

    ``details`` adds the depths, why a LUT gives no latency (``lut_note``) and the known
    discrepancies of the paper's tables (``note``): what ``python -m tfnas_core zoo`` prints.
    ``store`` (``measured.MeasuredStore``): the timing is made once on this machine (``measure.measure_many``)."""
    from tfnas_core.latency import lut as latency

    lut = latency.load(lut_path) if lut_path else None
    where = measure.measure_setting(lut, device) if measure_on else None
    rows, specs = [], zoo.load_all()
    m = measure.measure_many(specs, device=where["device"], batch=where["batch"], threads=where["threads"],
                             repeats=repeats, min_time_s=min_time_s, lut=lut if where["comparable"] else None,
                             store=store) if measure_on else None
    factor = m.get("speed_factor") if m else None
    for name, spec in specs.items():
        p = zoo.PAPER[name]
        row = {"architecture": name, "space": spec.space,
               "flops_m": flops.count_flops(spec, convention=flops_convention),
               "paper_flops_m": p.flops_m, "params_m": flops.count_params(spec),
               "proxy_flops_m": flops.count_flops(spec, Proxy(28, 0.25, 1, 10, 1), convention=flops_convention),
               "paper_top1": p.top1, "paper_gpu_ms": p.gpu_ms, "paper_gpu_lut_ms": p.gpu_lut_ms,
               "paper_cpu_ms": p.cpu_ms, "lut_ms": None, "measured_ms": None, "lut_error_pct": None}
        if measure_on:
            row["measured_on"] = where["label"]
        lut_note = None
        if lut is not None:
            try:
                row["lut_ms"] = lut.predict(spec)
            except ValueError as e:  # e.g. the official GPU table has no mbv2 keys
                row["lut_ms"] = None
                lut_note = str(e).split(" (needed")[0]
        if measure_on:
            row["measured_ms"] = m["timings"][name].ms
            if row["lut_ms"] is not None and where["comparable"]:
                row["lut_error_pct"] = 100 * (row["lut_ms"] - row["measured_ms"]) / row["measured_ms"]
            if factor is not None:
                row.update(measured_ms_lut_base=row["measured_ms"] / factor, speed_factor=factor)
                if row["lut_ms"] is not None:
                    row["lut_error_lut_base_pct"] = 100 * (row["lut_ms"] / row["measured_ms_lut_base"] - 1)
        if details:
            row.update(depths="-".join(map(str, spec.depths)), lut_note=lut_note,
                       note=zoo.KNOWN_DISCREPANCIES.get(name))
        rows.append(row)
    return pd.DataFrame(rows)
