"""Tests of the latency objectives C(LAT): values, gradients, registry."""
from __future__ import annotations

import math

import pytest
import torch

from tfnas_core.search import objectives as O


def grad_of(fn, lat: float, *args, **kw) -> tuple[float, float]:
    x = torch.tensor(lat, requires_grad=True)
    y = fn(x, *args, **kw)
    y.backward()
    return y.item(), x.grad.item()


def test_default_is_the_released_abs_objective():
    assert O.DEFAULT_OBJECTIVE == "abs"
    assert O.get_objective(O.DEFAULT_OBJECTIVE) is O.abs_objective
    assert O.DEFAULT_LAMBDA == 0.1


def test_abs_values_and_gradients():
    v, g = grad_of(O.abs_objective, 18.0, 15.0)
    assert v == pytest.approx(0.1 * (18 / 15 - 1))
    assert g == pytest.approx(0.1 / 15)
    v, g = grad_of(O.abs_objective, 12.0, 15.0)  # under target: still penalised, pushed up
    assert v == pytest.approx(0.1 * (1 - 12 / 15))
    assert g == pytest.approx(-0.1 / 15)


def test_eq9_is_one_sided():
    v, g = grad_of(O.eq9, 18.0, 15.0, lam=0.5)
    assert v == pytest.approx(0.5 * (18 / 15 - 1))
    assert g == pytest.approx(0.5 / 15)
    v, g = grad_of(O.eq9, 12.0, 15.0, lam=0.5)
    assert v == 0.0 and g == 0.0


def test_abs_and_eq9_agree_above_target_only():
    for lat in (15.5, 20.0, 40.0):
        assert O.abs_objective(lat, 15.0).item() == pytest.approx(O.eq9(lat, 15.0).item())
    assert O.abs_objective(10.0, 15.0).item() > O.eq9(10.0, 15.0).item()


def test_c1_fbnet_style():
    v, g = grad_of(O.c1, 20.0, None, lam=0.2, lam2=0.6)
    assert v == pytest.approx(0.2 * math.log(20.0) ** 0.6)
    assert g == pytest.approx(0.2 * 0.6 * math.log(20.0) ** (-0.4) / 20.0)


def test_c2_proxyless_style():
    v, g = grad_of(O.c2, 20.0, None, lam=0.3)
    assert v == pytest.approx(6.0)
    assert g == pytest.approx(0.3)
    assert O.c2(20.0, 999.0, lam=0.3).item() == pytest.approx(6.0)  # target plays no part


def test_registry_and_latency_loss():
    assert set(O.OBJECTIVES) == {"abs", "eq9", "c1", "c2"}
    assert O.latency_loss(18.0, 15.0).item() == pytest.approx(0.1 * 0.2)
    assert O.latency_loss(18.0, 15.0, "eq9", lam=1.0).item() == pytest.approx(0.2)
    assert O.latency_loss(20.0, None, "c1", lam2=1.0).item() == pytest.approx(0.2 * math.log(20.0))
    with pytest.raises(ValueError, match="unknown latency objective"):
        O.latency_loss(1.0, 1.0, "c3")


@pytest.mark.parametrize("name", ["abs", "eq9"])
def test_target_must_be_positive(name):
    with pytest.raises(ValueError, match="target"):
        O.latency_loss(10.0, 0.0, name)
    with pytest.raises(ValueError, match="target"):
        O.latency_loss(10.0, None, name)


def test_gradient_reaches_arch_parameters_through_expected_latency():
    """The objective composes with a relaxed latency: Σ softmax(α)·LAT."""
    a = torch.zeros(3, requires_grad=True)
    lats = torch.tensor([10.0, 15.0, 30.0])
    loss = O.abs_objective((torch.softmax(a, -1) * lats).sum(), 15.0)
    loss.backward()
    # above target: the gradient lowers the slow op's logit relative to the fast one
    assert a.grad[2] > 0 > a.grad[0]


@pytest.mark.parametrize("name", ["abs", "eq9"])
def test_a_target_under_one_millisecond_is_a_target(name):
    """Positive means positive: 0.5 ms (a tiny net on a fast GPU) is a valid target; 0 and -1 are not."""
    assert O.latency_loss(1.0, 0.5, name, lam=1.0).item() == pytest.approx(1.0)  # |1 / 0.5 - 1| = max(1, 0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"target latency must be positive, got {bad}"):
            O.latency_loss(1.0, bad, name)


def test_a_hyper_parameter_an_objective_does_not_take_is_refused_by_name():
    """λ2 belongs to C1 only; passing it to another objective is an error naming both, not ignored."""
    for name, takes in (("abs", "lam"), ("eq9", "lam"), ("c2", "lam")):
        with pytest.raises(ValueError) as e:
            O.latency_loss(20.0, 15.0, name, lam2=0.5)
        assert str(e.value) == f"lam2 is not a hyper-parameter of the {name!r} objective (it takes {takes})"
    assert O.latency_loss(20.0, None, "c1", lam=0.1, lam2=0.5).item() == pytest.approx(0.1 * math.log(20.0) ** 0.5)
    with pytest.raises(ValueError) as e:
        O.get_objective("c3")
    assert str(e.value) == "unknown latency objective 'c3'; known: abs, eq9, c1, c2"
