"""Latency objectives C(LAT) of the arch step (paper Eq. 1/7, Eq. 9, Table 5).

The arch loss is ``CE + C(LAT)`` with ``LAT`` the relaxed expected latency (Eq. 4/6) in ms.
Every objective has the signature ``fn(lat, target, lam, ...) -> tensor`` (pure, differentiable
in ``lat``):

* ``'abs'`` (default) - what the released code optimises and what produced the paper's
  numbers: ``λ · |LAT / target − 1|``.  It also pushes *up* toward the target when the
  architecture is faster than it.
* ``'eq9'`` - the paper's Eq. 9: ``λ · max(LAT / target − 1, 0)``: a one-sided hinge, zero (and
  zero gradient) at or under the target.
* ``'c1'`` - FBNet-style (Table 5 "C1"): ``λ1 · (log LAT)^λ2``; no target.  (FBNet itself
  multiplies the cross-entropy by this factor; Table 5 / Eq. 7 add it, as here.)  Needs
  ``LAT > 1`` ms for a non-integer ``λ2``.
* ``'c2'`` - ProxylessNAS-style (Table 5 "C2"): ``λ1 · LAT``; no target.

λ = 0.1 is the paper's choice for its own objective (Appendix, Tab. 13).  The paper tuned the
C1/C2 hyper-parameters per target and does not list them; the defaults in ``DEFAULTS`` (λ1 = 0.2,
λ2 = 0.6 for C1, λ1 = 0.1 for C2) are starting points, not the paper's values.  ``DEFAULTS`` is
the one place these numbers live: the functions' keyword defaults, ``latency_loss`` and the
search config (``search_config.fill_objective_defaults``, which writes the values used into
``config.json``) all read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

DEFAULT_LAMBDA = 0.1
# The hyper-parameters of each objective when a caller gives none (see the module docstring).
DEFAULTS: dict[str, dict[str, float]] = {
    "abs": {"lam": DEFAULT_LAMBDA},
    "eq9": {"lam": DEFAULT_LAMBDA},
    "c1": {"lam": 0.2, "lam2": 0.6},
    "c2": {"lam": 0.1},
}


def _t(lat) -> torch.Tensor:
    return lat if isinstance(lat, torch.Tensor) else torch.as_tensor(float(lat))


def _check_target(target: float) -> float:
    if target is None or not float(target) > 0:
        raise ValueError(f"target latency must be positive, got {target}")
    return float(target)


def abs_objective(lat, target: float, lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """Released code: ``λ · |LAT / target − 1|`` (the default)."""
    return lam * torch.abs(_t(lat) / _check_target(target) - 1.0)


def eq9(lat, target: float, lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    """Paper Eq. 9: ``λ · max(LAT / target − 1, 0)``."""
    return lam * torch.clamp(_t(lat) / _check_target(target) - 1.0, min=0.0)


def c1(lat, target: float | None = None, lam: float = DEFAULTS["c1"]["lam"],
       lam2: float = DEFAULTS["c1"]["lam2"]) -> torch.Tensor:
    """FBNet-style ``λ1 · (log LAT)^λ2`` (Table 5 "C1"); ``target`` is ignored."""
    return lam * torch.log(_t(lat)).pow(lam2)


def c2(lat, target: float | None = None, lam: float = DEFAULTS["c2"]["lam"]) -> torch.Tensor:
    """ProxylessNAS-style ``λ1 · LAT`` (Table 5 "C2"); ``target`` is ignored."""
    return lam * _t(lat)


OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {
    "abs": abs_objective,
    "eq9": eq9,
    "c1": c1,
    "c2": c2,
}
DEFAULT_OBJECTIVE = "abs"


def get_objective(name: str) -> Callable[..., torch.Tensor]:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown latency objective {name!r}; known: {', '.join(OBJECTIVES)}") from None


def latency_loss(lat, target: float | None, name: str = DEFAULT_OBJECTIVE, lam: float | None = None,
                 lam2: float | None = None) -> torch.Tensor:
    """``C(LAT)`` under the named objective; ``lam``/``lam2`` ``None`` take ``DEFAULTS[name]``.

    An objective takes exactly the hyper-parameters ``DEFAULTS[name]`` lists (``lam2``: ``c1``
    only); giving it another is an error."""
    fn = get_objective(name)
    given = {"lam": lam, "lam2": lam2}
    extra = [k for k, v in given.items() if v is not None and k not in DEFAULTS[name]]
    if extra:
        raise ValueError(f"{extra[0]} is not a hyper-parameter of the {name!r} objective "
                         f"(it takes {', '.join(DEFAULTS[name])})")
    kw = {k: default if given[k] is None else given[k] for k, default in DEFAULTS[name].items()}
    return fn(lat, target, **kw)


@dataclass(frozen=True)
class LatencyCost:
    """``C(LAT)`` of Eq. 7 with its numbers fixed: the objective's name, the target (ms) and its
    ``lam`` / ``lam2`` (``None``: ``DEFAULTS``).  Calling it on ``LAT`` is ``latency_loss``."""

    objective: str
    target_ms: float | None
    lam: float | None = None
    lam2: float | None = None

    def __call__(self, lat) -> torch.Tensor:
        return latency_loss(lat, self.target_ms, self.objective, self.lam, self.lam2)


__all__ = ["DEFAULTS", "DEFAULT_LAMBDA", "DEFAULT_OBJECTIVE", "LatencyCost", "OBJECTIVES", "abs_objective", "c1", "c2",
           "eq9", "get_objective", "latency_loss"]
