"""Path sampling, relaxation and temperatures pinned by independently computed values (issue 33).

The Gumbel noise is checked against the textbook formula ``g = -log(-log(v))``, ``v`` uniform on
(0, 1): torch's CPU ``exponential_`` draws ``E = -log(1 - u)`` from one float64 uniform ``u`` of
the generator (``torch.rand(..., dtype=float64)`` with the same seed gives the same ``u``), so the
noise ``-log E`` is ``-log(-log(1 - u))``, computed here without ``samplers``.  Which op a sampler
picks is then worked out from that noise on hand-made α; temperatures at given epochs are written
out (T0 = 5.0, ×0.96 per epoch after the warm-up; the linear 5.0 -> 0.2 of Fig. 2); the error
messages are the one-line messages the user reads.  Device handling is checked on the CPU with
``meta`` tensors (a device that holds no data); the checks that need a GPU are at the end and skip
without one.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from tfnas_core.search import samplers as S


def _uniform(seed: int, n: int) -> torch.Tensor:
    return torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _gumbel(seed: int, n: int) -> torch.Tensor:
    """The first ``n`` Gumbel(0, 1) draws of a generator seeded ``seed``: -log(-log(1 - u))."""
    return -torch.log(-torch.log1p(-_uniform(seed, n)))


# ----------------------------------------------------------------------------- Gumbel noise


def test_gumbel_noise_is_minus_log_minus_log_of_the_generators_uniforms():
    want = _gumbel(7, 6)
    got = S.gumbel_noise_on(torch.empty(6, dtype=torch.float64), S.make_generator(7))
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # float32 α: float32 noise (the same draws rounded), shaped like α
    got32 = S.gumbel_noise(torch.empty(2, 3), S.make_generator(7))
    assert got32.dtype == torch.float32 and got32.shape == (2, 3)
    torch.testing.assert_close(got32.reshape(-1).double(), want, rtol=0, atol=1e-6)


def test_gumbel_noise_devices_checked_with_meta_tensors():
    """Without a generator the noise is drawn on α's device; with one, on the generator's device
    (``gumbel_noise_on``), and ``gumbel_noise`` moves it to α's device."""
    like = torch.empty(4, device="meta")
    assert S.gumbel_noise_on(like).device.type == "meta"
    on_gen = S.gumbel_noise_on(like, S.make_generator(3))
    assert on_gen.device.type == "cpu"
    torch.testing.assert_close(on_gen.double(), _gumbel(3, 4), rtol=0, atol=1e-6)
    assert S.gumbel_noise(like, S.make_generator(3)).device.type == "meta"


def test_make_generator_is_seeded_and_made_on_the_device_given():
    g = S.make_generator(11)
    assert g.device.type == "cpu" and g.initial_seed() == 11
    torch.testing.assert_close(torch.rand(3, dtype=torch.float64, generator=g), _uniform(11, 3), rtol=0, atol=0)
    assert S.make_generator(11, torch.device("cpu")).device.type == "cpu"
    with pytest.raises(RuntimeError):  # the device reaches torch.Generator, which holds no generator on 'meta'
        S.make_generator(0, "meta")


def test_relaxed_noise_is_every_layers_draws_in_layer_order():
    """``relaxed_noise``: one flat tensor, layer after layer, the same draws ``relaxed_weights`` makes."""
    alps = [torch.zeros(3), torch.zeros(2, 2), torch.zeros(1), torch.zeros(4)]
    noise = S.relaxed_noise(alps, S.make_generator(5))
    assert noise.shape == (12,) and noise.dtype == torch.float32
    torch.testing.assert_close(noise.double(), _gumbel(5, 12), rtol=0, atol=1e-6)
    parts = noise.split([a.numel() for a in alps])
    from_noise = [S.relax(a, p.view(a.shape), 2.0) for a, p in zip(alps, parts)]
    eager = S.relaxed_weights(alps, 2.0, S.make_generator(5))
    for x, y in zip(from_noise, eager):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


# ----------------------------------------------------------------------------- first path


def test_gumbel_index_is_the_argmax_of_log_softmax_alpha_plus_the_noise():
    alpha = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    for seed in range(20):
        want = int(torch.argmax(alpha.double() + _gumbel(seed, 4)))  # log_softmax of log-probs is the identity
        assert S.gumbel_index(alpha, S.make_generator(seed)) == want, seed
    # unnormalised α: log_softmax shifts every op alike, the argmax is that of α + g
    raw = torch.tensor([2.0, -1.0, 0.5])
    for seed in range(20):
        assert S.gumbel_index(raw, S.make_generator(seed)) == int(torch.argmax(raw.double() + _gumbel(seed, 3)))


def test_sampling_and_relaxing_warn_of_nothing():
    """Every softmax names its dimension: no 'implicit dimension' deprecation warning each step."""
    a = torch.tensor([0.3, -0.2, 0.1, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S.gumbel_index(a, S.make_generator(0))
        S.second_index(a, 1, "gumbel", S.make_generator(0))
        S.relax(a, torch.zeros(4), 1.0)
        S.relax(a, torch.zeros(4), 1.0, hard=True)


def test_on_host_on_the_cpu_returns_the_tensors_themselves():
    """No copy on the CPU: the same storage, detached; ``packed_copy`` makes new storage on the device
    it is given."""
    alps = [torch.randn(3, requires_grad=True), torch.randn(5, requires_grad=True)]
    host = S.on_host(alps)
    assert [h.data_ptr() for h in host] == [a.data_ptr() for a in alps]
    assert not any(h.requires_grad for h in host)
    packed = S.packed_copy(alps)
    assert all(p.data_ptr() != a.data_ptr() for p, a in zip(packed, alps))
    meta = S.packed_copy(alps, "meta")
    assert [m.device.type for m in meta] == ["meta", "meta"] and [m.shape for m in meta] == [(3,), (5,)]


# ----------------------------------------------------------------------------- second path


def test_second_index_gumbel_samples_the_other_ops_with_their_own_noise():
    """'gumbel': log_softmax over the ops other than the first path's, plus one Gumbel draw for each
    of them (3 draws for 4 ops); argmax, mapped back to the layer's op index."""
    alpha = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    others = [0, 1, 2]
    rest = torch.log(torch.tensor([1 / 6, 2 / 6, 3 / 6], dtype=torch.float64))  # log_softmax(α[others])
    for seed in range(20):
        g = S.make_generator(seed)
        assert S.second_index(alpha, 3, "gumbel", g) == others[int(torch.argmax(rest + _gumbel(seed, 3)))], seed
        # the generator moved by exactly three uniforms
        assert torch.rand(1, dtype=torch.float64, generator=g).item() == _uniform(seed, 4)[3].item()


def test_second_index_random_is_one_uniform_draw_over_the_others():
    alpha = torch.zeros(5)
    others = [0, 1, 3, 4]  # first = 2
    for seed in range(10):
        j = int(torch.randint(4, (1,), generator=torch.Generator().manual_seed(seed)))
        assert S.second_index(alpha, 2, "random", S.make_generator(seed)) == others[j]
    # without a generator it draws from torch's global generator, on the CPU
    torch.manual_seed(4)
    j = int(torch.randint(4, (1,)))
    torch.manual_seed(4)
    assert S.second_index(alpha, 2, "random") == others[j]


@pytest.mark.parametrize("strategy", ["random", "gumbel", "min_alpha", "max_alpha"])
def test_a_layer_of_two_ops_has_one_second_path(strategy):
    a = torch.tensor([0.7, -0.7])
    assert S.second_index(a, 0, strategy, S.make_generator(0)) == 1
    assert S.second_index(a, 1, strategy, S.make_generator(0)) == 0


def test_second_path_messages():
    with pytest.raises(ValueError) as e:
        S.second_index(torch.zeros(1), 0, "random")
    assert str(e.value) == "a second path needs at least two choices in every layer"
    with pytest.raises(ValueError) as e:
        S.second_index(torch.zeros(3), 0, "best")
    assert str(e.value) == "unknown second-path strategy 'best'; known: none, gumbel, min_alpha, max_alpha, random"
    for first in (3, -1):
        with pytest.raises(ValueError) as e:
            S.second_index(torch.zeros(3), first, "random")
        assert str(e.value) == f"first-path index {first} outside the layer's 3 choices"
    with pytest.raises(ValueError) as e:
        S.second_path([torch.zeros(3)] * 3, [0, 1], "random")
    assert str(e.value) == "3 layers of α but a first path of 2"


# ----------------------------------------------------------------------------- relaxation


def test_relax_is_soft_unless_asked_and_eq3_by_hand():
    """α = log(1/2, 1/4, 1/4), no noise: T = 1 gives the probabilities back; T = 2 gives
    softmax(α / 2) = (√.5, √.25, √.25) / (√.5 + 1) = (√2 - 1, 1 - 1/√2, 1 - 1/√2)."""
    alpha = torch.log(torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    zero = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(S.relax(alpha, zero, 1.0), torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    half = torch.tensor([math.sqrt(2) - 1, 1 - 1 / math.sqrt(2), 1 - 1 / math.sqrt(2)], dtype=torch.float64)
    torch.testing.assert_close(S.relax(alpha, zero, 2.0), half)
    hard = S.relax(alpha, zero, 2.0, hard=True)
    assert hard.tolist() == [1.0, 0.0, 0.0] and hard.dtype == torch.float64
    with pytest.raises(ValueError) as e:
        S.relax(alpha, zero, 0.0)
    assert str(e.value) == "temperature must be positive, got 0.0"


def test_relaxed_weights_are_soft_by_default():
    alps = [torch.log(torch.tensor([0.5, 0.25, 0.25])), torch.zeros(2)]
    w = S.relaxed_weights(alps, 5.0, S.make_generator(2))
    g = _gumbel(2, 5).float()
    torch.testing.assert_close(w[0], torch.softmax((alps[0] + g[:3]) / 5.0, -1))
    torch.testing.assert_close(w[1], torch.softmax((alps[1] + g[3:]) / 5.0, -1))
    assert all(0 < x < 1 for t in w for x in t.tolist())


def test_relax_works_row_by_row_on_stacked_layers():
    """Logits of several layers stacked (one row each): softmax and the hard one-hot per row."""
    logits = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    zero = torch.zeros(2, 3)
    soft = S.relax(logits, zero, 1.0)
    torch.testing.assert_close(soft, torch.stack([torch.softmax(r, 0) for r in logits]))
    assert S.relax(logits, zero, 1.0, hard=True).tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


# ----------------------------------------------------------------------------- temperature


def test_exponential_temperature_at_given_epochs():
    """T0 = 5.0 through the warm-up and the first arch epoch (10), then ×0.96 an epoch."""
    assert [S.exponential_temperature(e) for e in (0, 9, 10)] == [5.0, 5.0, 5.0]
    assert S.exponential_temperature(11) == pytest.approx(4.8, abs=1e-12)
    assert S.exponential_temperature(12) == pytest.approx(4.608, abs=1e-12)
    assert S.exponential_temperature(13) == pytest.approx(4.42368, abs=1e-12)
    assert S.exponential_temperature(7, t0=2.0, decay=0.5, warmup=5) == pytest.approx(0.5, abs=1e-12)
    assert S.temperature("exponential", 12, 90) == pytest.approx(4.608, abs=1e-12)


def test_linear_temperature_at_given_epochs():
    """5.0 at the first arch epoch (10) to 0.2 at the last (89 of 90): -4.8/79 an epoch; held
    before and after; a run with one arch epoch or none stays at 5.0."""
    assert S.linear_temperature(50, 90) == pytest.approx(5.0 - 4.8 * 40 / 79, abs=1e-12)  # 2.5696...
    assert S.linear_temperature(5, 90) == 5.0
    assert S.linear_temperature(89, 90) == pytest.approx(0.2, abs=1e-12)
    assert S.linear_temperature(95, 90) == pytest.approx(0.2, abs=1e-12)  # past the last epoch: held at t1
    assert S.linear_temperature(10, 11) == 5.0  # span 0: the only arch epoch is the first
    assert S.linear_temperature(12, 11) == 5.0
    assert S.linear_temperature(10, 12) == 5.0  # span 1: two arch epochs, 5.0 then 0.2
    assert S.linear_temperature(11, 12) == pytest.approx(0.2, abs=1e-12)
    assert S.temperature("linear", 11, 12) == pytest.approx(0.2, abs=1e-12)


def test_unknown_temperature_schedule_message():
    with pytest.raises(ValueError) as e:
        S.temperature("cosine", 0, 90)
    assert str(e.value) == "unknown temperature schedule 'cosine'; known: exponential, linear"


# ----------------------------------------------------------------------------- device logic, on the CPU
# What the GPU branches decide, checked here with spies (issue 33: no CUDA needed); the draws and
# the copy themselves on a GPU: the two tests below.


class _OnDevice:
    """A generator as ``second_index`` sees it: truthy, with a device (here one with no GPU)."""

    device = torch.device("cuda", 0)


def test_second_index_random_asks_for_its_draw_on_the_generators_device(monkeypatch):
    """``torch.randint`` must draw where the generator lives (a CUDA generator cannot fill a CPU
    tensor), and on the CPU without one."""
    asked = []

    def randint(high, size, *, generator=None, **kw):
        asked.append((high, size, generator, kw))
        return torch.tensor([2])

    monkeypatch.setattr(torch, "randint", randint)
    gen = _OnDevice()
    assert S.second_index(torch.zeros(5), 1, "random", gen) == 3  # others [0, 2, 3, 4]
    assert S.second_index(torch.zeros(5), 1, "random") == 3
    assert asked == [(4, (1,), gen, {"device": torch.device("cuda", 0)}), (4, (1,), None, {"device": "cpu"})]


def test_on_host_hands_alpha_off_the_cpu_to_one_packed_copy(monkeypatch):
    """Off the CPU (meta tensors here) every layer goes to ``packed_copy``, in layer order, with
    the host as the default device; any CPU tensor among GPU ones goes the same way."""
    seen = []
    monkeypatch.setattr(S, "packed_copy", lambda alphas, *a, **kw: seen.append((list(alphas), a, kw)) or "packed")
    meta = [torch.zeros(3, device="meta"), torch.zeros(2, device="meta")]
    assert S.on_host(meta) == "packed"
    mixed = [torch.zeros(3), torch.zeros(2, device="meta")]
    assert S.on_host(mixed) == "packed"
    assert [([id(t) for t in al], a, kw) for al, a, kw in seen] == [([id(t) for t in meta], (), {}),
                                                                    ([id(t) for t in mixed], (), {})]


# ----------------------------------------------------------------------------- on a GPU

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_on_a_gpu_the_generator_and_the_draws_stay_there():
    g = S.make_generator(0, "cuda")
    assert g.device.type == "cuda"
    a = torch.zeros(4, device="cuda")
    assert S.gumbel_noise(a, g).device.type == "cuda"
    j = S.second_index(a, 1, "random", g)  # torch.randint on the generator's device
    assert j in (0, 2, 3)
    assert S.second_index(a.cpu(), 1, "random", S.make_generator(0, "cuda")) == j


@cuda
def test_on_a_gpu_on_host_copies_alpha_to_the_cpu_in_layer_order():
    alps = [torch.randn(n, device="cuda", requires_grad=True) for n in (7, 3, 5)]
    host = S.on_host(alps)
    assert [h.device.type for h in host] == ["cpu"] * 3
    assert all(torch.equal(h, a.detach().cpu()) for h, a in zip(host, alps))
