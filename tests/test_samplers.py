"""Tests of path sampling, Gumbel-softmax relaxation and temperature schedules."""
from __future__ import annotations

import math

import pytest
import torch

from tfnas_core.search import samplers as S


def alphas(n_layers: int = 17, n_ops: int = 8, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.log_softmax(torch.randn(n_ops, generator=g) * 2, -1) for _ in range(n_layers)]


@pytest.mark.parametrize("strategy", ["gumbel", "min_alpha", "max_alpha", "random"])
def test_second_path_never_equals_first(strategy):
    g = S.make_generator(1)
    for seed in range(30):
        a = alphas(seed=seed) + [torch.zeros(9)]  # a skip-in layer with 9 choices, all tied
        first = S.gumbel_path(a, g)
        second = S.second_path(a, first, strategy, g)
        assert len(second) == len(first)
        assert all(f != s for f, s in zip(first, second))
        assert all(0 <= s < len(x) for s, x in zip(second, a))


def test_bi_sample_is_gumbel_path_then_second_path():
    a = alphas()
    first, second = S.bi_sample(a, "random", S.make_generator(12))
    g = S.make_generator(12)
    want_first = S.gumbel_path(a, g)
    assert first == want_first
    assert second == S.second_path(a, want_first, "random", g)
    assert S.bi_sample(a, "none", S.make_generator(12)) == (first, None)


def test_second_path_none_strategy():
    a = alphas()
    assert S.second_path(a, S.gumbel_path(a, S.make_generator(0)), "none") is None
    assert S.second_index(a[0], 0, "none") is None


def test_min_and_max_alpha_pick_the_right_ops():
    a = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.2])
    assert S.second_index(a, 0, "max_alpha") == 2
    assert S.second_index(a, 2, "max_alpha") == 3  # the largest among the others
    assert S.second_index(a, 0, "min_alpha") == 1
    assert S.second_index(a, 1, "min_alpha") == 4  # the smallest among the others
    tied = torch.zeros(4)
    assert S.second_index(tied, 0, "max_alpha") == 1  # ties: lowest index among the others
    assert S.second_index(tied, 1, "min_alpha") == 0


def test_random_second_path_is_uniform_over_the_others():
    a = torch.log_softmax(torch.tensor([5.0, 0.0, 0.0, 0.0, -5.0]), -1)
    g = S.make_generator(3)
    counts = torch.zeros(5)
    n = 4000
    for _ in range(n):
        counts[S.second_index(a, 0, "random", g)] += 1
    assert counts[0] == 0
    assert torch.all((counts[1:] / n - 0.25).abs() < 0.03), counts  # 0.03 ≈ 4.4 sigma


def test_gumbel_index_follows_softmax_alpha():
    a = torch.tensor([1.0, 0.0, -1.0, 2.0])
    p = torch.softmax(a, -1)
    g = S.make_generator(4)
    n = 6000
    counts = torch.zeros(4)
    for _ in range(n):
        counts[S.gumbel_index(a, g)] += 1
    assert torch.all((counts / n - p).abs() < 0.025), (counts / n, p)


def test_gumbel_second_path_follows_renormalised_others():
    a = torch.tensor([3.0, 1.0, 0.0, -1.0])
    g = S.make_generator(5)
    n = 6000
    counts = torch.zeros(4)
    for _ in range(n):
        counts[S.second_index(a, 0, "gumbel", g)] += 1
    p = torch.softmax(a[1:], -1)
    assert counts[0] == 0
    assert torch.all((counts[1:] / n - p).abs() < 0.025)


@pytest.mark.parametrize("strategy", ["gumbel", "random"])
def test_paths_are_deterministic_given_a_seed(strategy):
    a = alphas()

    def run(seed):
        g = S.make_generator(seed)
        first = S.gumbel_path(a, g)
        return first, S.second_path(a, first, strategy, g), [w.tolist() for w in S.relaxed_weights(a, 2.0, g)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_straight_through_gives_every_alpha_a_gradient():
    a = [x.clone().requires_grad_(True) for x in alphas(n_layers=5, seed=2)]
    w = S.relaxed_weights(a, 5.0, S.make_generator(0), hard=True)
    for x in w:
        assert sorted(x.detach().tolist()) == [0.0] * 7 + [1.0]  # one-hot forward value
    values = torch.arange(1.0, 9.0)
    sum((x * values).sum() for x in w).backward()
    for x in a:
        assert x.grad is not None and torch.all(x.grad != 0)


def test_soft_gumbel_softmax_is_a_distribution_and_sharpens_with_low_temperature():
    a = torch.tensor([0.5, 0.0, -0.5, 1.0]).requires_grad_(True)
    w = S.gumbel_softmax(a, 5.0, S.make_generator(0))
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(w > 0)
    (w * torch.arange(4.0)).sum().backward()
    assert torch.all(a.grad != 0)
    cold = S.gumbel_softmax(a.detach(), 1e-3, S.make_generator(0))
    assert cold.max().item() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="temperature"):
        S.gumbel_softmax(a, 0.0)


def test_gumbel_softmax_matches_eq3():
    """Eq. 3 with the same noise: softmax((α + g) / T)."""
    a = torch.tensor([0.2, -0.3, 1.1])
    noise = S.gumbel_noise(a, S.make_generator(9))
    w = S.gumbel_softmax(a, 2.5, S.make_generator(9))
    torch.testing.assert_close(w, torch.softmax((a + noise) / 2.5, -1))


def test_unknown_strategy_and_bad_first_index():
    with pytest.raises(ValueError, match="strategy"):
        S.second_index(torch.zeros(3), 0, "best")
    with pytest.raises(ValueError, match="first-path"):
        S.second_index(torch.zeros(3), 3, "random")


def test_exponential_temperature_follows_the_released_code():
    assert [S.exponential_temperature(e) for e in (0, 5, 10)] == [5.0, 5.0, 5.0]
    assert S.exponential_temperature(11) == pytest.approx(5.0 * 0.96)
    assert S.exponential_temperature(89) == pytest.approx(5.0 * 0.96 ** 79)
    assert S.temperature("exponential", 20, 90) == pytest.approx(5.0 * 0.96 ** 10)


def test_linear_temperature_goes_from_5_to_0_2():
    assert S.linear_temperature(10, 90) == pytest.approx(5.0)
    assert S.linear_temperature(89, 90) == pytest.approx(0.2)
    mid = S.linear_temperature(10 + 79 / 2, 90)
    assert mid == pytest.approx((5.0 + 0.2) / 2)
    ts = [S.linear_temperature(e, 90) for e in range(10, 90)]
    assert all(b < a for a, b in zip(ts, ts[1:]))
    assert S.linear_temperature(0, 90) == 5.0
    with pytest.raises(ValueError, match="schedule"):
        S.temperature("cosine", 0, 90)


def test_gumbel_noise_is_standard_gumbel():
    x = S.gumbel_noise(torch.empty(200_000), S.make_generator(11))
    assert x.mean().item() == pytest.approx(0.5772, abs=0.01)  # Euler-Mascheroni
    assert x.var().item() == pytest.approx(math.pi ** 2 / 6, abs=0.03)


def test_every_temperature_schedule_is_dispatched_through_the_registry_and_configured(monkeypatch):
    from tfnas_core.search import config as search_config

    assert set(S.TEMPERATURE_SCHEDULES) == set(search_config.SCHEDULE_FIELDS)
    calls = []
    monkeypatch.setitem(S.TEMPERATURE_SCHEDULES, "exponential", lambda epoch, **kw: calls.append((epoch, kw)) or 1.5)
    assert S.temperature("exponential", 3, 20, t0=4.0, warmup=2, decay=0.5) == 1.5
    assert calls == [(3, {"epochs": 20, "t0": 4.0, "warmup": 2, "decay": 0.5})]


def test_the_gpu_host_copy_keeps_every_layer_in_order_and_shape():
    """``on_host`` on a GPU packs α into one copy (``packed_copy``); checked here on the CPU: layers
    of different sizes and shapes come back in their order, equal, detached, and sample the same
    paths as the per-layer tensors."""
    alps = [torch.randn(n, requires_grad=True) for n in (7, 3, 5, 1, 9)] + [torch.randn(2, 3)]
    host = S.packed_copy(alps)
    assert [h.shape for h in host] == [a.shape for a in alps]
    assert all(torch.equal(h, a.detach()) and not h.requires_grad for h, a in zip(host, alps))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    vecs = alps[:5]
    assert S.gumbel_path(S.packed_copy(vecs), g1) == S.gumbel_path(vecs, g2)
