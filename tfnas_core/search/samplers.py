"""Path sampling, Gumbel-softmax relaxation and temperature schedules (paper Sec. 3.1, 3.3, 4.3).

Pure functions over tensors and an explicit ``torch.Generator``: nothing here keeps state, so a
search is reproducible from its seed.

* ``gumbel_index`` / ``gumbel_path`` - the weight step's first path: ``log_softmax(α)`` plus
  Gumbel(0, 1) noise, argmax (the released code's sampled forward; the temperature does not
  change an argmax, so it is not an argument).
* ``second_index`` / ``second_path`` - bi-sampling's second path (Sec. 3.3, Eq. 8; Tab. 3),
  drawn from the ops *other than* the first path's op in that layer, as the released code:
  ``'random'`` (uniform, the default and the paper's choice), ``'gumbel'`` (Gumbel-max over the
  remaining ops, log_softmax over them first), ``'min_alpha'`` / ``'max_alpha'`` (argmin / argmax
  of α over the remaining ops; ties go to the lower index), ``'none'`` (one-path search).
* ``gumbel_softmax`` / ``relaxed_weights`` - the arch step's relaxation (Eq. 3).  The released
  code feeds the stored α (log-probabilities) as they are; soft weights run every op.  With
  ``hard=True`` the forward value is one-hot and the backward is the soft one's
  (straight-through: ``hard - soft.detach() + soft``), so every α gets a gradient.
* Temperatures: ``exponential_temperature`` (released code, default: T0 = 5.0 during the first
  arch epoch, ×0.96 after each arch epoch) and ``linear_temperature`` (the paper's Fig. 2
  experiment: 5.0 → 0.2 linearly over the arch epochs).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

SECOND_PATH_STRATEGIES = ("none", "gumbel", "min_alpha", "max_alpha", "random")
DEFAULT_SECOND_PATH = "random"


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def gumbel_noise_on(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """i.i.d. Gumbel(0, 1) noise shaped like ``like`` (``-log E``, ``E ~ Exp(1)``), on the
    generator's device (``like``'s without one)."""
    dev = generator.device if generator is not None else like.device
    e = torch.empty(like.shape, dtype=like.dtype, device=dev).exponential_(generator=generator)
    return -e.log()


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``gumbel_noise_on``, moved to ``like``'s device."""
    return gumbel_noise_on(like, generator).to(like.device)


# ----------------------------------------------------------------------------- first path


def gumbel_index(alpha: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One Gumbel-max sample from ``log_softmax(alpha)``."""
    a = alpha.detach()
    return int(torch.argmax(F.log_softmax(a, dim=-1) + gumbel_noise(a, generator)))


def on_host(alphas: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``alphas`` detached and on the CPU, with one device-to-host copy for all layers.

    A path is Python control flow (which op each layer runs), so choosing it needs α on the
    host; reading each layer's argmax on a GPU would stall the stream once per layer.  On the CPU
    this returns the tensors themselves (detached), so the sampled path is the same bit for bit."""
    if all(a.device.type == "cpu" for a in alphas):
        return [a.detach() for a in alphas]
    return packed_copy(alphas)


def packed_copy(alphas: Sequence[torch.Tensor], device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """``alphas`` detached and copied to ``device`` as one flat tensor, split back in layer order and
    shape: what ``on_host`` does for tensors on a GPU (a function of its own so that a CPU test
    checks the packing and the order)."""
    flat = torch.cat([a.detach().reshape(-1) for a in alphas]).to(device)
    return [t.view(a.shape) for t, a in zip(flat.split([a.numel() for a in alphas]), alphas)]


def gumbel_path(alphas: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> list[int]:
    """The first (Gumbel-sampled) path: one op index per layer (sampled on the host)."""
    return [gumbel_index(a, generator) for a in on_host(alphas)]


# ----------------------------------------------------------------------------- second path


def second_index(alpha: torch.Tensor, first: int, strategy: str = DEFAULT_SECOND_PATH,
                 generator: torch.Generator | None = None) -> int | None:
    """The second path's op in one layer, never ``first`` (``None`` for strategy ``'none'``)."""
    if strategy not in SECOND_PATH_STRATEGIES:
        raise ValueError(f"unknown second-path strategy {strategy!r}; known: {', '.join(SECOND_PATH_STRATEGIES)}")
    if strategy == "none":
        return None
    a = alpha.detach()
    n = a.numel()
    if not 0 <= first < n:
        raise ValueError(f"first-path index {first} outside the layer's {n} choices")
    if n < 2:
        raise ValueError("a second path needs at least two choices in every layer")
    others = [i for i in range(n) if i != first]
    rest = a[others]
    if strategy == "random":
        j = int(torch.randint(len(others), (1,), generator=generator, device=generator.device if generator else "cpu"))
    elif strategy == "gumbel":
        j = int(torch.argmax(F.log_softmax(rest, dim=-1) + gumbel_noise(rest, generator)))
    elif strategy == "min_alpha":
        j = int(torch.argmin(rest))
    else:  # max_alpha
        j = int(torch.argmax(rest))
    return others[j]


def second_path(alphas: Sequence[torch.Tensor], first_path: Sequence[int], strategy: str = DEFAULT_SECOND_PATH,
                generator: torch.Generator | None = None) -> list[int] | None:
    """The bi-sampling second path (one op per layer, each different from the first path's)."""
    if len(alphas) != len(first_path):
        raise ValueError(f"{len(alphas)} layers of α but a first path of {len(first_path)}")
    if strategy == "none":
        return None
    return [second_index(a, f, strategy, generator) for a, f in zip(on_host(alphas), first_path)]


def bi_sample(alphas: Sequence[torch.Tensor], strategy: str = DEFAULT_SECOND_PATH,
              generator: torch.Generator | None = None) -> tuple[list[int], list[int] | None]:
    """Bi-sampling (Eq. 8): the Gumbel path and the second path (``None`` for ``'none'``)."""
    host = on_host(alphas)
    first = gumbel_path(host, generator)
    return first, second_path(host, first, strategy, generator)


# ----------------------------------------------------------------------------- relaxation


def gumbel_softmax(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None,
                   hard: bool = False) -> torch.Tensor:
    """Eq. 3: ``softmax((logits + g) / T)``; ``hard`` gives the straight-through one-hot."""
    return relax(logits, gumbel_noise(logits, generator), temperature, hard)


def relax(logits: torch.Tensor, noise: torch.Tensor, temperature: float, hard: bool = False) -> torch.Tensor:
    """``gumbel_softmax`` with its Gumbel ``noise`` given (drawn by ``relaxed_noise``)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    soft = F.softmax((logits + noise) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = F.one_hot(torch.argmax(soft, dim=-1), soft.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


def relaxed_weights(alphas: Sequence[torch.Tensor], temperature: float, generator: torch.Generator | None = None,
                    hard: bool = False) -> list[torch.Tensor]:
    """Gumbel-softmax weights for every layer (the arch step's ``ops`` argument)."""
    return [gumbel_softmax(a, temperature, generator, hard) for a in alphas]


def relaxed_noise(alphas: Sequence[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
    """The Gumbel noise ``relaxed_weights`` would draw for ``alphas``, concatenated, on the
    generator's device: the same draws in the same order, for a caller that moves them to the
    device in one copy (``cuda_graph``).  Split it with ``[a.numel() for a in alphas]``."""
    return torch.cat([gumbel_noise_on(a, generator).reshape(-1) for a in alphas])


# ----------------------------------------------------------------------------- temperature


def exponential_temperature(epoch: int, t0: float = 5.0, decay: float = 0.96, warmup: int = 10,
                            epochs: int | None = None) -> float:
    """Released code: ``t0`` up to and during epoch ``warmup``, then ×``decay`` per epoch.

    ``epochs`` is not used (the schedule does not depend on the run's length); every schedule
    of ``TEMPERATURE_SCHEDULES`` takes it, so ``temperature`` calls them alike."""
    return t0 * decay ** max(0, epoch - warmup)


def linear_temperature(epoch: int, epochs: int, t0: float = 5.0, t1: float = 0.2, warmup: int = 10) -> float:
    """Fig. 2's schedule: ``t0`` at the first arch epoch (``warmup``) to ``t1`` at the last."""
    span = epochs - 1 - warmup
    if span <= 0:
        return t0
    frac = min(1.0, max(0.0, (epoch - warmup) / span))
    return t0 + (t1 - t0) * frac


# Every schedule is called as fn(epoch, epochs=..., t0=..., warmup=..., **its own hyper-parameters).
TEMPERATURE_SCHEDULES: dict[str, Callable[..., float]] = {
    "exponential": exponential_temperature,
    "linear": linear_temperature,
}
DEFAULT_TEMPERATURE_SCHEDULE = "exponential"


def temperature(schedule: str, epoch: int, epochs: int, t0: float = 5.0, warmup: int = 10, **kw) -> float:
    """The temperature of ``epoch`` (0-based) under a named schedule (``kw``: its hyper-parameters)."""
    try:
        fn = TEMPERATURE_SCHEDULES[schedule]
    except KeyError:
        raise ValueError(f"unknown temperature schedule {schedule!r}; known: {', '.join(TEMPERATURE_SCHEDULES)}") from None
    return fn(epoch, epochs=epochs, t0=t0, warmup=warmup, **kw)


__all__ = [
    "DEFAULT_SECOND_PATH", "DEFAULT_TEMPERATURE_SCHEDULE", "SECOND_PATH_STRATEGIES", "TEMPERATURE_SCHEDULES", "bi_sample",
    "exponential_temperature", "gumbel_index", "gumbel_noise", "gumbel_noise_on", "gumbel_path", "gumbel_softmax", "linear_temperature",
    "make_generator", "on_host", "packed_copy", "relax", "relaxed_noise", "relaxed_weights", "second_index", "second_path", "temperature",
]
