"""The box, termination and resolution maps against quadrature of their defining integrals (independent references)."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from specguide.graph import batch_from_atoms
from specguide.observables import PairDistribution, ReducedPairDistribution
from specguide.observables.resolution import (
    TerminatedPDF,
    Termination,
    box_response,
    box_view,
    box_width,
    resolution_matrix,
    resolving_half_width,
    termination_matrix,
)
from specguide.observables.scattering import window_function


def lorch(r, R):
    return float(window_function(torch.tensor([r], dtype=torch.float64), R, "lorch")[0])


@pytest.mark.parametrize("window", ["lorch", "none"])
def test_box_response_is_the_cosine_transform_of_the_window(window):
    R = 7.3
    weight = (lambda r: lorch(r, R)) if window == "lorch" else (lambda r: 1.0)
    for q in (0.0, 0.21, 0.9, 2.7):
        reference, _ = quad(lambda r, q=q: math.cos(q * r) * weight(r) / math.pi, 0.0, R, limit=200)
        assert box_response(np.array([q]), R, window)[0] == pytest.approx(reference, abs=1e-9)


def test_box_width_of_a_sharp_cut_is_the_sinc_half_maximum():
    # sin(x)/x = 1/2 at x = 1.895494267
    assert box_width(10.0, "none") == pytest.approx(2 * 1.895494267 / 10.0, rel=1e-4)
    assert box_width(10.0, "lorch") > box_width(10.0, "none")  # the Lorch window trades resolution for ripples


def _shell_model():
    """h(r) = g(r) − 1 of two Gaussian shells (a depleted core and a peak beyond the box) at density rho."""
    rho = 0.05

    def h(r):
        return -0.9 * math.exp(-((r - 1.0) ** 2) / (2 * 0.5**2)) + 0.6 * math.exp(-((r - 5.5) ** 2) / (2 * 0.6**2))

    def f_of_q(q, r_cut=40.0, window=None):
        w = window or (lambda r: 1.0)
        value, _ = quad(lambda r: r * h(r) * w(r), 0.0, r_cut, weight="sin", wvar=q, limit=400)
        return 4 * math.pi * rho * value

    return f_of_q


@pytest.mark.parametrize("window", ["lorch", "none"])
def test_data_seen_through_the_box_equal_the_windowed_transform(window):
    """F_box(Q) = 4πρ ∫_0^R r h(r) sin(Qr) W(r) dr, the model's own definition, from the full F(Q) of the data."""
    f_of_q = _shell_model()
    R = 5.0  # the outer shell straddles the box edge, so the box changes F(Q) substantially
    q_out = np.arange(0.5, 20.0, 0.05)
    w = (lambda r: lorch(r, R)) if window == "lorch" else None
    # data from Q ≈ 0: the identity itself (the sharp cut-off's slow 1/q kernel also sees the end of the data at 25)
    # data from 0.3 Å⁻¹: S − 1 is extrapolated as a constant below, so the first reliable points are looser
    # (only the Lorch window is checked there: a sharp cut-off's kernel carries the extrapolation error far along Q)
    cases = [(0.02, 1e-6)] if window == "none" else [(0.02, 1e-6), (0.3, 3e-2)]
    for start, tolerance in cases:
        q_data = np.arange(start, 25.0, 0.02)
        f_data = np.array([f_of_q(q) for q in q_data])
        view = box_view(q_data, f_data, "F", q_out, R, window)
        check = np.flatnonzero(view.reliable)[::15]
        reference = np.array([f_of_q(q, r_cut=R, window=w) for q in q_out[check]])
        full = np.array([f_of_q(q) for q in q_out[check]])
        assert np.abs(full - reference).max() > 0.05  # the box matters here
        scale = np.abs(reference).max()
        tolerance = max(tolerance, 3e-3 if window == "none" else 0.0)
        assert np.abs(view.seen[check] - reference).max() < tolerance * scale
        # S(Q) = 1 + F/Q goes through the same map
        s_view = box_view(q_data, 1 + f_data / q_data, "S", q_out, R, window)
        assert np.allclose(s_view.seen[check], 1 + reference / q_out[check], atol=tolerance * scale)


def test_the_blur_shrinks_as_the_box_grows_and_the_resolving_box_is_found():
    f_of_q = _shell_model()
    q_data = np.arange(0.02, 25.0, 0.02)
    s_data = 1 + np.array([f_of_q(q) for q in q_data]) / q_data
    q_out = np.arange(0.5, 20.0, 0.05)
    blurs = [box_view(q_data, s_data, "S", q_out, R, "lorch").blur() for R in (5.0, 10.0, 30.0)]
    assert blurs[0] > blurs[1] > blurs[2]
    # the Lorch taper W(r) = sinc(πr/R) still weakens the 5.5 Å shell by 1 − W ≈ 5 % at R = 30 Å
    assert blurs[2] < 0.06
    needed = resolving_half_width(q_data, s_data, "S", q_out, tolerance=0.05)
    assert needed is not None and 10.0 < needed <= 60.0
    assert box_view(q_data, s_data, "S", q_out, needed, "lorch").blur() <= 0.05


def test_termination_matrix_equals_the_truncated_double_transform():
    r = (np.arange(600) + 0.5) * 0.01  # bin centres to 6 Å
    q_min, q_max = 0.8, 18.0

    def g_of_r(x):  # a G(r)-like curve: −4πρr core and a peak, smooth enough for the grid
        return -0.4 * x * math.exp(-((x / 2.2) ** 4)) + 3.0 * math.exp(-((x - 2.35) ** 2) / (2 * 0.09**2))

    def f_of_q(q):
        value, _ = quad(g_of_r, 0.0, 12.0, weight="sin", wvar=q, limit=400)
        return value

    g = np.array([g_of_r(x) for x in r])
    terminated = termination_matrix(r, q_min, q_max) @ g
    for x in r[40:560:37]:
        reference, _ = quad(lambda q, x=x: 2 / math.pi * f_of_q(q) * math.sin(q * x), q_min, q_max, limit=400)
        k = int(round(x / 0.01 - 0.5))
        assert terminated[k] == pytest.approx(reference, abs=4e-3 * np.abs(g).max())


def test_terminated_model_pdf_tends_to_the_model_as_qmax_grows_and_carries_ripples_at_a_low_qmax():
    from specguide.pretrained import load_md_dataset

    atoms = load_md_dataset("a-Si_2.5", split="test")[0]
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    plain = ReducedPairDistribution(r_max=7.0, dr=0.02, sigma=0.15)
    wide = TerminatedPDF(ReducedPairDistribution(r_max=7.0, dr=0.02, sigma=0.15), Termination(q_max=100.0))
    g = plain(positions.double(), cells.double(), numbers, batch)[0]
    inside = wide.grid < 6.5  # the model's G(r) ends at r_max: the last ripple period sees that edge
    seen = wide(positions.double(), cells.double(), numbers, batch)[0]
    assert torch.allclose(seen[inside], g[inside], atol=2e-3 * g.abs().max())
    low = TerminatedPDF(PairDistribution(r_max=7.0, dr=0.02, sigma=0.05), Termination(q_max=12.0, q_damp=0.03))
    pos = positions.double().requires_grad_(True)
    seen = low(pos, cells.double(), numbers, batch)[0]
    core = low.grid < 1.8  # g = 0 in the model; termination ripples of period 2π/Qmax ≈ 0.52 Å below the first peak
    assert float(seen[core].detach().abs().max()) > 0.05
    seen.sum().backward()
    assert torch.isfinite(pos.grad).all() and float(pos.grad.abs().sum()) > 0


def test_gaussian_resolution_adds_widths_in_quadrature():
    q = np.arange(0.0, 10.0, 0.005)
    s0, fwhm = 0.1, 0.2
    peak = np.exp(-0.5 * ((q - 5.0) / s0) ** 2)
    smoothed = resolution_matrix(q, q, fwhm=fwhm) @ peak
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    expected = s0 / math.hypot(s0, sigma) * np.exp(-0.5 * (q - 5.0) ** 2 / (s0**2 + sigma**2))
    assert np.abs(smoothed - expected).max() < 1e-6
