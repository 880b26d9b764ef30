"""Pair distribution functions against analytic crystal shells, an ideal gas, a brute-force reference, freud,
hand-computed Faber-Ziman weights, finite differences and symmetry."""

import math

import ase
import ase.build
import ase.io
import numpy as np
import pytest
import torch

from specguide.graph import batch_from_atoms
from specguide.observables import PairDistribution, RadialDistribution, ReducedPairDistribution

A_SI = 5.43
A_CU = 3.615


def random_sio2(n_si: int, length: float, seed: int) -> ase.Atoms:
    """Uniform random Si_n O_2n in a triclinic cell of edge ~``length``."""
    rng = np.random.default_rng(seed)
    cell = length * np.array([[1.0, 0.0, 0.0], [0.25, 0.95, 0.0], [-0.15, 0.1, 1.05]])
    atoms = ase.Atoms("SiO2" * n_si, cell=cell, pbc=True)
    atoms.set_scaled_positions(rng.random((len(atoms), 3)))
    return atoms


def rattled_sio2(seed: int) -> ase.Atoms:
    """16 atoms near fcc sites of a triclinic cell (no pair closer than ~1.5 Å), 1/3 Si."""
    base = ase.build.bulk("Cu", "fcc", a=4.2, cubic=True).repeat((2, 2, 1))
    base.set_cell(base.cell[:] + np.array([[0, 0, 0], [0.6, 0, 0], [0.3, -0.4, 0]]), scale_atoms=True)
    numbers = np.array([14 if k % 3 == 0 else 8 for k in range(len(base))])
    atoms = ase.Atoms(numbers=numbers, positions=base.positions, cell=base.cell, pbc=True)
    atoms.rattle(0.15, seed=seed)
    return atoms


def to_torch(structures):
    return batch_from_atoms(structures, dtype=torch.float64)


def integrate(values: torch.Tensor, grid: torch.Tensor, lo: float, hi: float, dr: float) -> float:
    mask = (grid > lo) & (grid < hi)
    return float(values[..., mask].sum() * dr)


# ---------------------------------------------------------------------------------------------------------
# crystals: peak positions and coordination shells
# ---------------------------------------------------------------------------------------------------------

SI_SHELLS = [(A_SI * math.sqrt(3) / 4, 4), (A_SI / math.sqrt(2), 12), (A_SI * math.sqrt(11) / 4, 12)]
CU_SHELLS = [(A_CU / math.sqrt(2), 12), (A_CU, 6), (A_CU * math.sqrt(1.5), 24)]


def silicon():
    return ase.build.bulk("Si", "diamond", A_SI, cubic=True).repeat(3)


def copper():  # one-atom primitive cell: all neighbours are periodic images of the atom itself
    return ase.build.bulk("Cu", "fcc", A_CU)


@pytest.mark.parametrize("build, shells", [(silicon, SI_SHELLS), (copper, CU_SHELLS)], ids=["Si", "Cu"])
def test_crystal_peaks_and_shell_counts(build, shells):
    """Narrow kernel: g(r) peaks at the analytic neighbour distances, ∫ 4πρr²g dr over a shell = its count."""
    dr = 0.005
    pos, cells, numbers, batch = to_torch(build())
    g_obs = PairDistribution(r_max=6.0, dr=dr, sigma=0.02)
    g = g_obs(pos, cells, numbers, batch)[0]
    rdf = RadialDistribution(r_max=6.0, dr=dr, sigma=0.02)(pos, cells, numbers, batch)[0]
    r = g_obs.grid
    distances = [d for d, _ in shells]
    bounds = [0.0] + [(a + b) / 2 for a, b in zip(distances[:-1], distances[1:], strict=True)]
    bounds.append(distances[-1] + (distances[-1] - bounds[-1]))
    for (d, count), lo, hi in zip(shells, bounds[:-1], bounds[1:], strict=True):
        window = (r > lo) & (r < hi)
        peak = r[window][torch.argmax(g[window])]
        assert abs(float(peak) - d) <= dr  # bin centres: the nearest one is ≤ dr/2 away
        assert integrate(rdf, r, lo, hi, dr) == pytest.approx(count, rel=1e-3)


@pytest.mark.parametrize("build, shells", [(silicon, SI_SHELLS), (copper, CU_SHELLS)], ids=["Si", "Cu"])
def test_first_shell_count_with_glass_kernel(build, shells):
    """Default σ = 0.15 Å: the first shell (≥ 7σ from the second) still integrates to its coordination number."""
    pos, cells, numbers, batch = to_torch(build())
    obs = RadialDistribution()
    rdf = obs(pos, cells, numbers, batch)[0]
    (d1, n1), (d2, _) = shells[0], shells[1]
    assert integrate(rdf, obs.grid, 0.0, (d1 + d2) / 2, obs.dr) == pytest.approx(n1, rel=1e-2)
    first = obs.grid < (d1 + d2) / 2
    assert float(obs.grid[first][torch.argmax(rdf[first])]) == pytest.approx(d1, abs=obs.dr)  # n(r) peaks at d


# ---------------------------------------------------------------------------------------------------------
# ideal gas
# ---------------------------------------------------------------------------------------------------------


def test_ideal_gas():
    """Uniform random points in a periodic cube.

    Pair distances of iid uniform points on a torus are pairwise independent, so the smoothed pair count at r has
    variance ≤ λ(r) ∫K² = λ(r) / (2√π σ) with λ(r) = N(N−1)/2 · 4πr²/V pairs per Å. Hence
    std[g(r)] / g ≤ (2√π σ λ(r))^(-1/2) (1.8 % at 1.5 Å, 0.35 % at 8 Å for N = 8000). The expected broadened g is
    (N−1)/N · (1 + σ²/r²). The mean |g − E g| of a Gaussian error is √(2/π) std; allowing twice that is > 5
    standard errors of the mean for ~12 independent kernel widths, yet catches any wrong factor. The integrated
    count over [2, 8] Å (~420k pairs, binomial) is within 4 / √(pairs) ≈ 0.6 %: it pins the normalisation down.
    """
    n, rho, sigma = 8000, 0.05, 0.15
    length = (n / rho) ** (1 / 3)
    rng = np.random.default_rng(7)
    pos = torch.as_tensor(rng.random((n, 3)) * length)
    cells = torch.eye(3, dtype=torch.float64)[None] * length
    numbers = torch.full((n,), 14)
    obs = PairDistribution(sigma=sigma)
    g = obs(pos, cells, numbers)[0]
    r = obs.grid
    volume = length**3
    expected = (n - 1) / n * (1 + sigma**2 / r**2)
    pairs_per_angstrom = n * (n - 1) / 2 * 4 * math.pi * r**2 / volume
    std = expected / torch.sqrt(2 * math.sqrt(math.pi) * sigma * pairs_per_angstrom)
    far = r > 1.5
    assert float((g - expected)[far].abs().mean()) < 2 * math.sqrt(2 / math.pi) * float(std[far].mean())
    assert float((g - 1)[far].abs().mean()) < 0.02

    rdf = RadialDistribution(sigma=sigma)(pos, cells, numbers)[0]
    a, b = 2.0, 8.0
    counted = integrate(rdf, r, a, b, obs.dr)
    ideal = (n - 1) / volume * 4 * math.pi * ((b**3 - a**3) / 3 + sigma**2 * (b - a))
    n_pairs = ideal * n / 2
    assert counted == pytest.approx(ideal, rel=4 / math.sqrt(n_pairs))


# ---------------------------------------------------------------------------------------------------------
# brute force, weights, output conventions
# ---------------------------------------------------------------------------------------------------------


def brute_force_partials(atoms: ase.Atoms, r: np.ndarray, sigma: float, species: list[int]) -> np.ndarray:
    """Dense numpy reference: every ordered pair (i, j, image) with an untruncated Gaussian."""
    cell = atoms.cell[:]
    pos = atoms.positions
    volume = abs(np.linalg.det(cell))
    widths = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    reach = r[-1] + 10 * sigma
    ranges = [range(-math.ceil(reach / w) - 1, math.ceil(reach / w) + 2) for w in widths]
    shifts = np.array([[a, b, c] for a in ranges[0] for b in ranges[1] for c in ranges[2]]) @ cell
    diff = pos[None, :, None, :] - pos[:, None, None, :] + shifts[None, None, :, :]
    dist = np.linalg.norm(diff, axis=-1)  # [i, j, image]
    zero = np.isclose(dist, 0.0)
    out = []
    for p, a in enumerate(species):
        for b in species[p:]:
            sel = dist[np.ix_(atoms.numbers == a, atoms.numbers == b)]
            sel = sel[~zero[np.ix_(atoms.numbers == a, atoms.numbers == b)]]
            sel = sel[sel < reach]
            kernel = np.exp(-0.5 * ((r[:, None] - sel[None, :]) / sigma) ** 2).sum(1) / (math.sqrt(2 * math.pi) * sigma)
            n_a, n_b = (atoms.numbers == a).sum(), (atoms.numbers == b).sum()
            out.append(volume / (n_a * n_b) * kernel / (4 * math.pi * r**2))
    return np.stack(out)


def test_partials_match_brute_force_reference():
    """Small triclinic cell, r_max beyond half its width: images (of other atoms and of self) all count."""
    atoms = random_sio2(n_si=8, length=6.0, seed=3)
    obs = PairDistribution(r_max=7.0, dr=0.02, sigma=0.15)
    partials = obs.partials(*to_torch(atoms))
    assert partials.labels == ["O-O", "O-Si", "Si-Si"]
    assert partials.pairs.tolist() == [[8, 8], [8, 14], [14, 14]]
    reference = brute_force_partials(atoms, obs.grid.numpy(), 0.15, [8, 14])
    np.testing.assert_allclose(partials.values[0].numpy(), reference, rtol=1e-7, atol=1e-7 * reference.max())


SCATTERING = {  # hand-written: Z, and Sears (1992) coherent b_c in fm
    "xray": {14: 14.0, 8: 8.0},
    "neutron": {14: 4.1491, 8: 5.803},
}


@pytest.mark.parametrize("weighting", ["number", "xray", "neutron"])
def test_total_is_faber_ziman_sum_of_partials(weighting):
    atoms = random_sio2(n_si=20, length=9.0, seed=5)
    pos, cells, numbers, batch = to_torch(atoms)
    obs = PairDistribution(r_max=6.0, weighting=weighting)
    total = obs(pos, cells, numbers, batch)[0]
    partials = obs.partials(pos, cells, numbers, batch)
    c = {14: 1 / 3, 8: 2 / 3}
    f = SCATTERING.get(weighting, {14: 1.0, 8: 1.0})
    if weighting == "neutron":  # periodictable's values are the tabulated Sears ones to < 0.1 fm
        import periodictable

        assert periodictable.elements[14].neutron.b_c == pytest.approx(f[14], abs=0.01)
        assert periodictable.elements[8].neutron.b_c == pytest.approx(f[8], abs=0.01)
        f = {z: periodictable.elements[z].neutron.b_c for z in (14, 8)}
    mean_f = sum(c[z] * f[z] for z in (14, 8))
    expected = torch.zeros_like(total)
    for (a, b), g_ab in zip(partials.pairs.tolist(), partials.values[0], strict=True):
        multiplicity = 1 if a == b else 2  # g_ab = g_ba: the unlike pair appears twice in Σ_ab
        expected += multiplicity * c[a] * c[b] * f[a] * f[b] / mean_f**2 * g_ab
    torch.testing.assert_close(total, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("weighting", ["number", "xray", "neutron"])
def test_reduced_pdf_and_rdf_conventions(weighting):
    atoms = random_sio2(n_si=20, length=9.0, seed=8)
    batch = to_torch(atoms)
    g_obs = PairDistribution(weighting=weighting)
    g = g_obs(*batch)[0]
    rho = len(atoms) / atoms.get_volume()
    r = g_obs.grid
    big_g = ReducedPairDistribution(weighting=weighting)(*batch)[0]
    torch.testing.assert_close(big_g, 4 * math.pi * rho * r * (g - 1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(PairDistribution(weighting=weighting, output="G")(*batch)[0], big_g)
    rdf = RadialDistribution(weighting=weighting)(*batch)[0]
    torch.testing.assert_close(rdf, 4 * math.pi * rho * r**2 * g, rtol=1e-10, atol=1e-10)
    assert (g_obs.kind, ReducedPairDistribution.kind, RadialDistribution.kind) == ("gr", "pdf", "rdf")
    assert PairDistribution(output="G").kind == "pdf"


def test_fixed_species_absent_from_structure():
    atoms = silicon()
    batch = to_torch(atoms)
    fixed = PairDistribution(species=[14, 8], weighting="xray").partials(*batch)
    inferred = PairDistribution(weighting="xray").partials(*batch)
    assert fixed.labels == ["O-O", "O-Si", "Si-Si"] and inferred.labels == ["Si-Si"]
    assert float(fixed.values[0, :2].abs().max()) == 0.0
    torch.testing.assert_close(fixed.values[0, 2], inferred.values[0, 0])
    torch.testing.assert_close(
        PairDistribution(species=[14, 8], weighting="xray")(*batch), PairDistribution(weighting="xray")(*batch)
    )


# ---------------------------------------------------------------------------------------------------------
# freud
# ---------------------------------------------------------------------------------------------------------


def test_against_freud_on_amorphous_carbon(shared_dir):
    """Our broadened pair density n(r) vs freud's histogram of the same a-C cell, broadened with the same Gaussian.

    freud counts each pair in a bin of width b = 2.5 mÅ, i.e. moves it by ≤ b/2. Moving a Gaussian by ≤ b/2
    changes it by ≤ (b/2) max|K'| on that interval, so |n_ours − n_freud| ≤ (b/2) Σ_bins c_bin max|K'| (computed
    below from freud's own counts, plus freud's float32 rounding); the observed difference is far below it.
    """
    import freud

    path = shared_dir / "data" / "a-C-xanes-dft" / "structures" / "d2.5_1.vasp"
    if not path.exists():
        pytest.skip(f"{path} is not present")
    atoms = ase.io.read(path, format="vasp")
    n, volume = len(atoms), atoms.get_volume()
    r_max, b, sigma, span = 5.9, 0.0025, 0.05, 0.5  # freud needs r_max < half the 12 Å box
    box = freud.box.Box.from_matrix(atoms.cell[:].T)
    edges, counts, cumulative_freud = [], [], []
    for lo in np.arange(0.0, r_max, span):  # freud 3.4's RDF set-up grows ~ bins³: tile 200-bin windows
        hi = min(lo + span, r_max)
        rdf = freud.density.RDF(bins=round((hi - lo) / b), r_max=hi, r_min=lo)
        rdf.compute(system=(box, atoms.positions), reset=True)
        window_edges = np.asarray(rdf.bin_edges, dtype=np.float64)
        shells = 4 * np.pi / 3 * (window_edges[1:] ** 3 - window_edges[:-1] ** 3)
        counts.append(np.asarray(rdf.rdf, dtype=np.float64) * shells * n / volume)  # neighbours per atom per bin
        edges.append(window_edges[1:])
        cumulative_freud.append(np.asarray(rdf.n_r, dtype=np.float64))
    edges, counts = np.concatenate(edges), np.concatenate(counts)
    centres = edges - b / 2

    obs = RadialDistribution(r_max=r_max - 7 * sigma, dr=0.01, sigma=sigma)
    ours = obs(*to_torch(atoms))[0].numpy()
    r = obs.grid.numpy()
    x = (r[:, None] - centres[None, :]) / sigma
    reference = (counts[None, :] * np.exp(-0.5 * x**2)).sum(1) / (math.sqrt(2 * math.pi) * sigma)
    # max |K'| over |t| ≤ b/2 around x: |x|e^{-x²/2}/σ² at the nearest point, or its maximum e^{-1/2} if inside
    near = np.maximum(np.abs(x) - b / 2 / sigma, 0.0)
    slope = np.where(near < 1, np.exp(-0.5), near * np.exp(-0.5 * near**2)) / (math.sqrt(2 * math.pi) * sigma**2)
    bound = b / 2 * (counts[None, :] * slope).sum(1) + 1e-5 * reference.max()
    assert np.all(np.abs(ours - reference) <= bound)
    # tighter: the same Gaussian sum over freud's own (float32, ≲ 10⁻⁵ Å) neighbour distances
    query = freud.locality.AABBQuery(box, atoms.positions)
    pairs = query.query(atoms.positions, {"r_max": r_max, "exclude_ii": True}).toNeighborList()
    d = np.asarray(pairs.distances, dtype=np.float64)
    x = (r[:, None] - d[None, :]) / sigma
    kernel = np.exp(-0.5 * x**2) / (math.sqrt(2 * math.pi) * sigma)
    exact = kernel.sum(1) / n
    assert np.all(np.abs(ours - exact) <= 1e-5 * (np.abs(x) * kernel / sigma).sum(1) / n + 1e-9)
    # coordination up to R = 1.9 Å (first minimum of a-C): freud's hard count vs ∫_0^R n(r) dr; only pairs within
    # 6σ of R can be counted differently (each by < 1), so their number is the tolerance
    radius = 1.9
    last = int(radius // span)  # freud's count of neighbours in [0, 1.9) Å, window by window
    hard = sum(float(c[-1]) for c in cumulative_freud[:last])
    hard += float(cumulative_freud[last][round((radius - last * span) / b) - 1])
    cumulative = float(ours[r < radius].sum() * obs.dr)
    near_radius = float(counts[np.abs(centres - radius) < 6 * sigma + b].sum())
    assert abs(cumulative - hard) <= near_radius + 1e-4


# ---------------------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["g", "G", "partials"])
def test_gradients_match_finite_differences(what):
    atoms = rattled_sio2(seed=1)
    pos0, cells0, numbers, batch = to_torch(atoms)
    obs = PairDistribution(
        r_min=1.0, r_max=6.0, dr=0.05, sigma=0.3, weighting="xray", output="G" if what == "G" else "g"
    )
    moved = [0, 5, 11]

    def forward(displacement, cells):
        pos = pos0.clone()
        pos[moved] = pos[moved] + displacement
        if what == "partials":
            return obs.partials(pos, cells, numbers, batch).values
        return obs(pos, cells, numbers, batch)

    displacement = torch.zeros(len(moved), 3, dtype=torch.float64, requires_grad=True)
    cells = cells0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(forward, (displacement, cells), eps=1e-6, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# invariances
# ---------------------------------------------------------------------------------------------------------


def _both(obs, pos, cells, numbers, batch):
    return torch.cat([obs(pos, cells, numbers, batch), obs.partials(pos, cells, numbers, batch).values.flatten(1)], 1)


def test_invariances():
    obs = PairDistribution(r_max=6.0, weighting="neutron")
    atoms = random_sio2(n_si=10, length=8.0, seed=11)
    pos, cells, numbers, batch = to_torch(atoms)
    ref = _both(obs, pos, cells, numbers, batch)

    shifted = pos + torch.tensor([0.37, -1.2, 2.9], dtype=torch.float64)
    torch.testing.assert_close(_both(obs, shifted, cells, numbers, batch), ref, rtol=1e-10, atol=1e-10)

    images = torch.randint(-2, 3, (len(atoms), 3), generator=torch.Generator().manual_seed(0)).to(torch.float64)
    unwrapped = pos + images @ cells[0]
    torch.testing.assert_close(_both(obs, unwrapped, cells, numbers, batch), ref, rtol=1e-10, atol=1e-10)
    wrapped_atoms = atoms.copy()
    wrapped_atoms.positions = unwrapped.numpy()
    wrapped_atoms.wrap()
    torch.testing.assert_close(_both(obs, *to_torch(wrapped_atoms)), ref, rtol=1e-10, atol=1e-10)

    perm = torch.randperm(len(atoms), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(_both(obs, pos[perm], cells, numbers[perm], batch), ref, rtol=1e-10, atol=1e-10)

    other = silicon()  # a different size, cell and species set
    alone = to_torch(other)  # its partials lack the O-O and O-Si channels, which are zero in the joint batch
    zeros = torch.zeros(1, 2 * obs.n_r, dtype=torch.float64)
    other_ref = torch.cat([obs(*alone), zeros, obs.partials(*alone).values[0]], 1)
    joint = _both(obs, *to_torch([atoms, other]))
    torch.testing.assert_close(joint[0], ref[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(joint[1], other_ref[0], rtol=1e-10, atol=1e-10)
