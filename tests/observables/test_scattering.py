"""Reciprocal-space observables against independent references.

- Finite clusters: the exact Debye sum against DebyeCalculator (its own Waasmaier-Kirfel table and pair sum).
- Periodic structures: the pair-sum S(Q) against the direct reciprocal-space sum ρ(G) = Σ_i exp(iG·r_i) over the
  reciprocal lattice. By Poisson summation the windowed pair sum is *exactly* a weighted average of |ρ(G)|²/N:
      S_W(Q) = (2/(N V)) Σ_{G in half space, G≠0} φ̂_Q(|G|) |ρ(G)|²,
      φ̂_Q(k) = 4π ∫_0^{r_max} r² sinc(Qr) sinc(kr) W(r) dr,
  (per partial: c_a c_b (S_ab − 1) + δ_ab c_a = (2/(N V)) Σ φ̂ Re ρ_a ρ_b*), so it can be checked tightly; the
  plain shell average of |ρ(G)|²/N (the physical S(Q) of the cell) is checked loosely.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
import xraydb
from ase.io import read

from specguide.graph import neighbor_graph
from specguide.observables.scattering import (
    WINDOWS,
    NeutronDiffraction,
    ReducedStructureFactor,
    StructureFactor,
    XRayDiffraction,
    debye_intensity,
    window_function,
)
from specguide.observables.weights import neutron_scattering_length

DTYPE = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Most tensors here are tiny; on a busy 2-core machine thread hand-offs cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------------------
# structures
# --------------------------------------------------------------------------------------------------------------


def relaxed_random(n: int, density: float, d0: float, seed: int = 0, steps: int = 150):
    """Random points in a cubic cell pushed apart by a soft-sphere repulsion: a liquid-like packing."""
    gen = torch.Generator().manual_seed(seed)
    length = (n / density) ** (1 / 3)
    cell = torch.eye(3, dtype=DTYPE) * length
    x = torch.rand(n, 3, generator=gen, dtype=DTYPE) * length
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        graph = neighbor_graph(x, cell[None], None, d0, full_list=False)
        energy = ((d0 - graph.distances).clamp_min(0) ** 2).sum()
        (grad,) = torch.autograd.grad(energy, x)
        x = (x - 0.1 * grad).remainder(length)
    return x.detach(), cell


@pytest.fixture(scope="module")
def liquid_si():
    """2,000 Si atoms at the a-Si density (0.05 Å⁻³), minimum distance 2.3 Å, L = 34.2 Å."""
    x, cell = relaxed_random(2000, 0.05, 2.3)
    return x, cell, torch.full((2000,), 14)


@pytest.fixture(scope="module")
def small_sio2():
    """150 atoms Si:O = 1:2 at 0.066 Å⁻³ (L = 13.1 Å < 2 r_max: periodic images of atoms themselves count)."""
    x, cell = relaxed_random(150, 0.066, 1.5, seed=1)
    numbers = torch.tensor([14] * 50 + [8] * 100)
    return x, cell, numbers


def amorphous_carbon(shared_dir: Path):
    """One DFT-MD a-C cell (216 atoms) of the shared data set."""
    files = sorted((shared_dir / "data" / "a-C-xanes-dft" / "structures").glob("d2.5_*.vasp"))
    if not files:
        pytest.skip("shared a-C structures not available")
    atoms = read(files[0])
    return (
        torch.tensor(atoms.get_positions(), dtype=DTYPE),
        torch.tensor(np.asarray(atoms.cell[:]), dtype=DTYPE),
        torch.tensor(atoms.numbers),
    )


# --------------------------------------------------------------------------------------------------------------
# reciprocal-space reference
# --------------------------------------------------------------------------------------------------------------


def reciprocal_densities(x, cell, kinds, n_kinds, g_cut):
    """|G| and ρ_a(G) = Σ_{i∈a} exp(iG·r_i) for every reciprocal vector with 0 < |G| < g_cut in a half space."""
    a = cell.numpy()
    frac = torch.as_tensor(x.numpy() @ np.linalg.inv(a))
    b = 2 * np.pi * np.linalg.inv(a).T
    hmax = [math.ceil(g_cut * np.linalg.norm(a[i]) / (2 * np.pi)) for i in range(3)]
    ks = torch.arange(-hmax[1], hmax[1] + 1, dtype=DTYPE)
    ls = torch.arange(-hmax[2], hmax[2] + 1, dtype=DTYPE)
    e2 = torch.exp(2j * math.pi * frac[:, 1:2] * ks[None])
    e3 = torch.exp(2j * math.pi * frac[:, 2:3] * ls[None])
    kk, ll = np.meshgrid(ks.numpy(), ls.numpy(), indexing="ij")
    norms, rhos = [], []
    for h in range(hmax[0] + 1):
        e1 = torch.exp(2j * math.pi * frac[:, 0] * h)
        g = np.stack([np.full_like(kk, h), kk, ll], -1).reshape(-1, 3) @ b
        norm = np.linalg.norm(g, axis=-1)
        half = (h > 0) | (kk > 0) | ((kk == 0) & (ll > 0))
        keep = (norm < g_cut) & half.reshape(-1)
        rho = torch.stack(
            [((e1[kinds == s, None] * e2[kinds == s]).T @ e3[kinds == s]).reshape(-1) for s in range(n_kinds)]
        )
        norms.append(norm[keep])
        rhos.append(rho[:, torch.as_tensor(keep)].numpy())
    return np.concatenate(norms), np.concatenate(rhos, 1)


def window_transform(q, g, r_max, window, n_r=2001):
    """φ̂_Q(|G|) = 4π ∫_0^R r² sinc(Qr) sinc(|G| r) W(r) dr by Simpson's rule: [n_q, n_G]."""
    r = np.linspace(0.0, r_max, n_r)
    w = np.full(n_r, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    w *= (r[1] - r[0]) / 3.0
    wr = window_function(torch.as_tensor(r), r_max, window).numpy()
    left = (w * r**2 * wr)[None, :] * np.sinc(q[:, None] * r[None, :] / np.pi)
    unique, inverse = np.unique(np.round(g, 9), return_inverse=True)
    return 4 * np.pi * (left @ np.sinc(r[:, None] * unique[None, :] / np.pi))[:, inverse]


def lattice_term(q, cell, r_max, window):
    """Σ_{G≠0} φ̂_Q(|G|)/V = 1 + Σ_{T≠0, |T|<r_max} φ_Q(|T|) − φ̂_Q(0)/V (Poisson summation of the window)."""
    a = cell.numpy()
    widths = abs(np.linalg.det(a)) / np.linalg.norm(np.cross(a[[1, 2, 0]], a[[2, 0, 1]]), axis=-1)
    n = [math.ceil(r_max / w) for w in widths]
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3)
    t = np.linalg.norm(grid @ a, axis=-1)
    t = t[(t > 0) & (t < r_max)]
    phi = np.sinc(q[:, None] * t[None, :] / np.pi) * window_function(torch.as_tensor(t), r_max, window).numpy()
    return 1.0 + phi.sum(1) - window_transform(q, np.zeros(1), r_max, window)[:, 0] / abs(np.linalg.det(a))


def reciprocal_partials(x, cell, numbers, q, r_max, window, g_cut):
    """c_a c_b (S_ab − 1) + δ_ab c_a from the reciprocal lattice sum ``(1/(N V)) Σ_{G≠0} φ̂_Q(|G|) Re ρ_a ρ_b*``.

    The incoherent part δ_ab N_a of Re ρ_a ρ_b* is summed exactly with ``lattice_term``, so only the coherent
    remainder (which averages out at large |G|) is truncated at ``g_cut``.
    """
    species = torch.unique(numbers)
    kinds = torch.searchsorted(species, numbers)
    g, rho = reciprocal_densities(x, cell, kinds, len(species), g_cut)
    kernel = window_transform(q, g, r_max, window)
    n, volume = len(numbers), abs(float(torch.det(cell)))
    counts = np.bincount(kinds.numpy(), minlength=len(species))
    cross = np.real(rho[:, None, :] * np.conj(rho[None, :, :])) - np.diag(counts)[..., None]  # [a, b, G]
    coherent = 2.0 * np.einsum("qg,abg->abq", kernel, cross) / (n * volume)  # ±G
    incoherent = np.diag(counts / n)[..., None] * lattice_term(q, cell, r_max, window)
    return coherent + incoherent, g, rho


# --------------------------------------------------------------------------------------------------------------
# finite clusters: exact Debye sum vs DebyeCalculator
# --------------------------------------------------------------------------------------------------------------


@lru_cache
def silica_like_cluster(n=1500, radius=10.0, seed=3):
    x, _ = relaxed_random(n, 0.066, 1.5, seed=seed)
    centre = x.mean(0)
    keep = (x - centre).norm(dim=-1) < radius  # a sphere cut from a periodic packing: a finite cluster
    numbers = torch.where(torch.arange(n) % 3 == 0, 14, 8)
    return x[keep], numbers[keep]


@pytest.mark.parametrize(
    "radiation,biso,pair_sum,rtol",
    [
        ("xray", 1.5, "direct", 1e-12),
        ("xray", 0.0, "direct", 1e-12),
        ("neutron", 0.3, "direct", 1e-12),
        ("xray", 1.5, "grid", 1e-9),
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_debye_intensity_matches_debyecalculator(radiation, biso, pair_sum, rtol):
    """I(Q) = 2 × DebyeCalculator.iq (it sums i<j and halves the self term), relative tolerance 1e-12 against its
    exact pair sum (found 1e-15) and 1e-9 against its default interpolated 'grid' pair sum (found 9e-13)."""
    pytest.importorskip("debyecalculator")
    import ase
    from debyecalculator import DebyeCalculator
    from debyecalculator.utility.generate import load_elements_info

    x, numbers = silica_like_cluster()
    assert 200 < len(numbers) < 400  # more pairs than distance-grid nodes: DebyeCalculator's grid pair sum
    atoms = ase.Atoms(numbers=numbers.numpy(), positions=x.numpy())
    # DebyeCalculator builds its Q grid and coefficient tables in the default dtype: make that float64 too
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        calc = DebyeCalculator(
            qmin=0.5,
            qmax=20.0,
            qstep=0.05,
            biso=biso,
            device="cpu",
            dtype=torch.float64,
            rad_type=radiation,
            pair_sum=pair_sum,
        )
        q, reference = calc.iq(atoms)
    finally:
        torch.set_default_dtype(default)
    amplitudes = None
    if radiation == "neutron":  # DebyeCalculator's own b_c table (periodictable differs in the 3rd digit)
        table = load_elements_info()
        amplitudes = {8: float(table["O"][11]), 14: float(table["Si"][11])}
    ours = debye_intensity(x, numbers, torch.as_tensor(q), radiation=radiation, b_iso=biso, amplitudes=amplitudes)
    np.testing.assert_allclose(ours.numpy(), 2.0 * reference, rtol=rtol)


def test_cluster_observables_are_the_debye_sum_per_atom():
    """XRD/ND/S(Q) with periodic=False are the exact all-pair Debye sum per atom, in Faber-Ziman form."""
    x, numbers = silica_like_cluster(n=600, radius=7.0, seed=4)
    n = len(numbers)
    cell = torch.zeros(3, 3, dtype=DTYPE)
    xrd = XRayDiffraction(1.0, 12.0, 0.1, periodic=False)  # B = 1.5 Å² by default
    q = xrd.grid
    np.testing.assert_allclose(
        xrd(x, cell, numbers)[0].numpy(), (debye_intensity(x, numbers, q, b_iso=1.5) / n).numpy(), rtol=1e-10
    )
    nd = NeutronDiffraction(1.0, 12.0, 0.1, periodic=False, b_iso=0.0)
    i_n = debye_intensity(x, numbers, q, radiation="neutron") / n
    np.testing.assert_allclose(nd(x, cell, numbers)[0].numpy(), i_n.numpy(), rtol=1e-10)
    # S(Q) = (I/N − ⟨b²⟩)/⟨b⟩² + 1
    b = {z: neutron_scattering_length(z) for z in (8, 14)}
    c_si = float((numbers == 14).double().mean())
    mean_b, mean_b2 = c_si * b[14] + (1 - c_si) * b[8], c_si * b[14] ** 2 + (1 - c_si) * b[8] ** 2
    sq = StructureFactor(1.0, 12.0, 0.1, weighting="neutron", periodic=False)(x, cell, numbers)[0]
    np.testing.assert_allclose(sq.numpy(), ((i_n - mean_b2) / mean_b**2 + 1).numpy(), rtol=1e-10)


# --------------------------------------------------------------------------------------------------------------
# periodic structures: pair sums vs the reciprocal lattice
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def liquid_si_reference(liquid_si):
    """Reciprocal-space reference for 1 ≤ Q ≤ 6 Å⁻¹, r_max = 10 Å, per window (|G| < 7 Å⁻¹)."""
    x, cell, numbers = liquid_si
    q = np.arange(1.0, 6.0 + 1e-9, 0.05)
    out = {}
    for window in WINDOWS:
        reference, g, rho = reciprocal_partials(x, cell, numbers, q, 10.0, window, g_cut=7.0)
        out[window] = reference[0, 0]
    return q, out, g, rho


@pytest.mark.parametrize("route", ["histogram", "debye"])
@pytest.mark.parametrize("window,tol", [("lorch", 1e-3), ("none", 1.5e-2)])
def test_periodic_sq_equals_reciprocal_lattice_sum(liquid_si, liquid_si_reference, route, window, tol):
    """2,000 atoms, r_max = 10 Å: S(Q) for 1 ≤ Q ≤ 6 Å⁻¹ equals the exact reciprocal-space average; max |ΔS| < 1e-3
    with the Lorch window (found 3e-4: the reference is truncated at |G| < 7 Å⁻¹; binning adds ~1e-5), < 1.5e-2 with
    the sharp cut-off, whose transform converges slowly in |G| (found 6e-3)."""
    x, cell, numbers = liquid_si
    q, reference, g, rho = liquid_si_reference
    sq = StructureFactor(1.0, 6.0, 0.05, route=route, r_max=10.0, window=window)
    np.testing.assert_allclose(sq.grid.numpy(), q, atol=1e-12)
    ours = sq(x, cell, numbers)[0].numpy()
    assert np.abs(ours - reference[window]).max() < tol
    # the physical S(Q) of the cell: plain average of |ρ(G)|²/N over shells |G| ∈ [Q − dq/2, Q + dq/2)
    edges = np.concatenate([q - 0.025, [q[-1] + 0.025]])
    shell = np.digitize(g, edges) - 1
    ok = (shell >= 0) & (shell < len(q))
    s_g = np.abs(rho[0]) ** 2 / len(numbers)
    shell_mean = np.bincount(shell[ok], s_g[ok], len(q)) / np.bincount(shell[ok], None, len(q))
    rms = np.sqrt(np.mean((ours - shell_mean) ** 2))
    assert rms < 0.05, rms  # the shell averages are speckle-noisy (~100-900 vectors per shell); found 0.03-0.04


def test_periodic_partials_with_self_images(small_sio2):
    """Two species, r_max (8 Å) > L/2 so atoms see their own images: every Faber-Ziman partial matches the
    reciprocal lattice sum; the window 'none' is checked too."""
    x, cell, numbers = small_sio2
    for window, tol in (("lorch", 5e-4), ("none", 1.5e-2)):  # found 7e-5 and 2e-3
        sq = StructureFactor(1.0, 8.0, 0.1, r_max=8.0, window=window)
        partials = sq.partials(x, cell, numbers)
        assert partials.labels == ["O-O", "O-Si", "Si-Si"] and partials.values.shape == (1, 3, len(sq.grid))
        c = torch.tensor([2 / 3, 1 / 3], dtype=DTYPE)
        ours = (c[:, None, None] * c[None, :, None]) * (partials.matrix()[0] - 1) + torch.diag(c)[..., None]
        reference, _, _ = reciprocal_partials(x, cell, numbers, sq.grid.numpy(), 8.0, window, g_cut=10.0)
        assert np.abs(ours.numpy() - reference).max() < tol, window


def test_amorphous_carbon_matches_reciprocal_lattice_sum(shared_dir):
    """A DFT-MD a-C cell (216 atoms, L ≈ 12 Å) with r_max = 10 Å (many self images)."""
    x, cell, numbers = amorphous_carbon(shared_dir)
    sq = StructureFactor(1.0, 8.0, 0.1, r_max=10.0)
    reference, _, _ = reciprocal_partials(x, cell, numbers, sq.grid.numpy(), 10.0, "lorch", g_cut=10.0)
    assert np.abs(sq(x, cell, numbers)[0].numpy() - reference[0, 0]).max() < 5e-4  # found 1.3e-4


def test_histogram_route_matches_exact_route(small_sio2):
    """Linear binning vs the exact pair-by-pair sum at Q up to 20 Å⁻¹: |ΔS| < 2e-5 (found 4e-6)."""
    x, cell, numbers = small_sio2
    for weighting in ("number", "xray", "neutron"):
        a = StructureFactor(weighting=weighting, route="histogram")(x, cell, numbers)
        b = StructureFactor(weighting=weighting, route="debye")(x, cell, numbers)
        assert (a - b).abs().max() < 2e-5


# --------------------------------------------------------------------------------------------------------------
# weighting
# --------------------------------------------------------------------------------------------------------------


def test_faber_ziman_weighting(small_sio2):
    x, cell, numbers = small_sio2
    grid = dict(q_min=0.5, q_max=15.0, dq=0.1)
    c = {8: 2 / 3, 14: 1 / 3}
    q = np.arange(0.5, 15.0001, 0.1)
    amplitudes = {
        "number": {8: np.ones_like(q), 14: np.ones_like(q)},
        "xray": {z: xraydb.f0(s, q / (4 * np.pi)) for z, s in ((8, "O"), (14, "Si"))},
        "neutron": {z: np.full_like(q, neutron_scattering_length(z)) for z in (8, 14)},
    }
    number = StructureFactor(**grid).partials(x, cell, numbers).matrix()[0].numpy()
    for weighting, f in amplitudes.items():
        obs = StructureFactor(**grid, weighting=weighting)
        total = obs(x, cell, numbers)[0].numpy()
        partials = obs.partials(x, cell, numbers)
        np.testing.assert_allclose(partials.matrix()[0].numpy(), number, atol=1e-12)  # partials do not depend on it
        mean = sum(c[z] * f[z] for z in (8, 14))
        expected = sum(
            c[a] * c[b] * f[a] * f[b] / mean**2 * number[i, j]
            for i, a in enumerate((8, 14))
            for j, b in enumerate((8, 14))
        )
        np.testing.assert_allclose(total, expected, rtol=1e-10)
        # intensities: I/N = ⟨f²⟩ + D ⟨f⟩² (S − 1)
        intensity_cls = {"xray": XRayDiffraction, "neutron": NeutronDiffraction}.get(weighting)
        if intensity_cls is not None:
            damping = np.exp(-1.5 * q**2 / (8 * np.pi**2))
            mean2 = sum(c[z] * f[z] ** 2 for z in (8, 14))
            intensity = intensity_cls(**grid)(x, cell, numbers)[0].numpy()
            np.testing.assert_allclose(intensity, mean2 + damping * mean**2 * (total - 1), rtol=1e-10)
    fq = ReducedStructureFactor(**grid, weighting="xray")(x, cell, numbers)[0].numpy()
    np.testing.assert_allclose(fq, q * (StructureFactor(**grid, weighting="xray")(x, cell, numbers)[0].numpy() - 1))


def test_single_element_weightings_agree(small_sio2):
    x, cell, _ = small_sio2
    numbers = torch.full((len(x),), 14)
    number = StructureFactor()(x, cell, numbers)
    for weighting in ("xray", "neutron"):
        torch.testing.assert_close(StructureFactor(weighting=weighting)(x, cell, numbers), number)
    assert abs(number[0, -40:].mean().item() - 1.0) < 0.02  # S(Q) → 1 at high Q


# --------------------------------------------------------------------------------------------------------------
# gradients and invariances
# --------------------------------------------------------------------------------------------------------------


def tiny_system():
    gen = torch.Generator().manual_seed(5)
    cell = torch.tensor([[6.0, 0.0, 0.0], [0.4, 6.5, 0.0], [-0.3, 0.2, 6.2]], dtype=DTYPE)
    frac = torch.rand(14, 3, generator=gen, dtype=DTYPE)
    numbers = torch.tensor([14] * 5 + [8] * 9)
    return frac @ cell, cell, numbers


OBSERVABLES = {
    "sq-xray": lambda route: StructureFactor(1.0, 10.0, 0.5, weighting="xray", r_max=5.0, route=route),
    "xrd": lambda route: XRayDiffraction(1.0, 10.0, 0.5, r_max=5.0, route=route),
    "nd": lambda route: NeutronDiffraction(1.0, 10.0, 0.5, r_max=5.0, route=route),
}


@pytest.mark.parametrize("route", ["debye", "histogram"])
@pytest.mark.parametrize("name", list(OBSERVABLES))
def test_gradients_match_finite_differences(name, route):
    """Autograd vs central differences in positions and cell vectors (float64). The exact route is smooth
    (relative max error < 1e-7, found 1e-9); the binned route is piecewise linear in each distance, so a tiny step
    (1e-7 Å) is used (< 1e-6, found 2e-8)."""
    obs = OBSERVABLES[name](route)
    x, cell, numbers = tiny_system()
    weights = torch.randn(len(obs.grid), generator=torch.Generator().manual_seed(2), dtype=DTYPE)

    def loss(x_, cell_):
        return (obs(x_, cell_, numbers)[0] * weights).sum()

    xg = x.clone().requires_grad_(True)
    cg = cell.clone().requires_grad_(True)
    gx, gc = torch.autograd.grad(loss(xg, cg), (xg, cg))
    eps = 1e-5 if route == "debye" else 1e-7
    for tensor, grad, is_cell in ((x, gx, False), (cell, gc, True)):
        numeric = torch.zeros_like(tensor)
        for idx in np.ndindex(*tensor.shape):
            plus, minus = tensor.clone(), tensor.clone()
            plus[idx] += eps
            minus[idx] -= eps
            lp = loss(x, plus) if is_cell else loss(plus, cell)
            lm = loss(x, minus) if is_cell else loss(minus, cell)
            numeric[idx] = (lp - lm) / (2 * eps)
        scale = numeric.abs().max()
        assert scale > 0
        assert ((grad - numeric).abs().max() / scale).item() < (1e-7 if route == "debye" else 1e-6)


def test_binned_gradient_close_to_exact():
    x, cell, numbers = tiny_system()
    grads = []
    for route in ("debye", "histogram"):
        xg = x.clone().requires_grad_(True)
        StructureFactor(weighting="xray", r_max=5.0, route=route)(xg, cell, numbers).sum().backward()
        grads.append(xg.grad)
    assert ((grads[0] - grads[1]).norm() / grads[0].norm()).item() < 5e-3  # found 1.2e-3


@pytest.mark.parametrize("cls", [StructureFactor, XRayDiffraction, NeutronDiffraction])
def test_invariances_and_batching(small_sio2, cls):
    x, cell, numbers = small_sio2
    obs = cls(0.5, 12.0, 0.1, r_max=7.0)
    reference = obs(x, cell, numbers)
    gen = torch.Generator().manual_seed(9)
    # translation, wrapping by lattice vectors, atom order
    shifted = x + torch.tensor([0.3, -1.7, 2.2], dtype=DTYPE)
    wrapped = x + torch.randint(-2, 3, (len(x), 3), generator=gen).to(DTYPE) @ cell
    perm = torch.randperm(len(x), generator=gen)
    for xx, nn in ((shifted, numbers), (wrapped, numbers), (x[perm], numbers[perm])):
        torch.testing.assert_close(obs(xx, cell, nn), reference, rtol=1e-9, atol=1e-9)
    # rotation of positions and cell together
    rot, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=DTYPE))
    torch.testing.assert_close(obs(x @ rot.T, cell @ rot.T, numbers), reference, rtol=1e-9, atol=1e-9)
    # a batch of two different structures (the second without oxygen) equals separate calls
    x2, cell2 = relaxed_random(40, 0.05, 2.2, seed=7, steps=50)
    n2 = torch.full((40,), 14)
    batched = obs(
        torch.cat([x, x2]), torch.stack([cell, cell2]), torch.cat([numbers, n2]), torch.tensor([0] * len(x) + [1] * 40)
    )
    assert batched.shape == (2, len(obs.grid))
    torch.testing.assert_close(batched[0], reference[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(batched[1], obs(x2, cell2, n2)[0], rtol=1e-9, atol=1e-9)


def test_header_and_grid():
    obs = XRayDiffraction()
    assert obs.kind == "xrd" and len(obs.grid) == 391
    assert abs(obs.grid[0].item() - 0.5) < 1e-12 and abs(obs.grid[-1].item() - 20.0) < 1e-12
    assert "B_iso=1.5" in obs.header() and "Q (Å⁻¹)" in obs.header()
    with pytest.raises(ValueError):
        StructureFactor(periodic=False, route="histogram")
    with pytest.raises(ValueError):
        StructureFactor(weighting="electron")
