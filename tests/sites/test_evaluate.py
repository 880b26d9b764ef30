"""Alignment with unknown correspondence and per-shell metrics."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from specguide.sites.clusters import site_cluster
from specguide.sites.crystals import build_phase
from specguide.sites.evaluate import (
    align_clusters,
    align_clusters_paper,
    bond_shells,
    compare_clusters,
    consensus_ranking,
    kabsch,
    soap_similarity,
)


def _quartz_cluster():
    atoms = build_phase("alpha-quartz")
    return site_cluster(atoms, int(np.flatnonzero(atoms.numbers == 8)[0]))


def test_kabsch_matches_scipy_align_vectors():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(9, 3))
    q = Rotation.from_rotvec([0.4, -0.2, 1.3]).apply(p) + rng.normal(0, 0.05, (9, 3))
    r, rmsd = kabsch(p, q)
    ref, _ = Rotation.align_vectors(q, p)
    np.testing.assert_allclose(r, ref.as_matrix(), atol=1e-8)
    np.testing.assert_allclose(rmsd, np.sqrt(((p @ r.T - q) ** 2).sum(1).mean()))


def test_alignment_recovers_rotation_and_permutation():
    cluster = _quartz_cluster()
    ref, num = cluster.positions, cluster.numbers
    rng = np.random.default_rng(1)
    perm = np.concatenate([[0], 1 + rng.permutation(len(ref) - 1)])
    rot = Rotation.from_rotvec([1.0, 2.0, -0.5]).as_matrix()
    pred = ref[perm] @ rot.T
    moved, pi, ri = align_clusters(pred, ref)
    np.testing.assert_allclose(moved[pi], ref[ri], atol=1e-8)
    np.testing.assert_array_equal(perm[pi], ri)  # the correspondence itself is found
    metrics = compare_clusters(pred, num[perm], ref, num)
    assert metrics["rmsd_all"] < 1e-8 and metrics["species_accuracy"] == 1.0
    assert metrics["rmsd_all_paper"] < 1e-8 and metrics["rmsd_shell1_paper"] < 1e-8
    assert metrics["cn_error_shell1"] == 0 and metrics["cn_error_shell2"] == 0


def test_alignment_survives_near_degenerate_shells():
    """Crystal sites have shells of atoms at nearly equal distances (quartz: six O at 2.61–2.64 Å), so a small
    perturbation reorders them; the alignment must still find the rotation (it once gave 1.07 Å here)."""
    cluster = _quartz_cluster()
    ref, num = cluster.positions, cluster.numbers
    rng = np.random.default_rng(2)
    rot = Rotation.from_rotvec([-0.7, 0.4, 2.2]).as_matrix()
    for trial in range(5):
        noise = rng.normal(0, 0.02, ref.shape)
        noise[0] = 0.0
        perm = np.concatenate([[0], 1 + rng.permutation(len(ref) - 1)])
        pred = ((ref + noise) @ rot.T)[perm]
        metrics = compare_clusters(pred, num[perm], ref, num)
        expected = np.sqrt((noise[1:] ** 2).sum(1).mean() * (len(ref) - 1) / len(ref))  # RMS over all atoms
        assert metrics["rmsd_all"] <= expected + 1e-9, trial  # never worse than the true correspondence
        assert metrics["species_accuracy_atoms"] == 1.0, trial


def test_metrics_detect_errors():
    cluster = _quartz_cluster()
    ref, num = cluster.positions, cluster.numbers
    pred = ref.copy()
    pred[1] *= 1.1  # stretch one Si–O bond by 10 %
    m = compare_clusters(pred, num, ref, num)
    d = 0.1 * np.linalg.norm(ref[1])
    assert m["rmsd_shell1"] == pytest.approx(d / np.sqrt(2), rel=0.15)  # one of two first-shell atoms moved
    wrong = num.copy()
    wrong[[1, 2]] = 8
    m = compare_clusters(ref, wrong, ref, num)
    assert m["species_accuracy_atoms"] == pytest.approx(1 - 2 / (len(ref) - 1))
    assert m["species_accuracy"] == 0.0  # O fraction wrong
    assert compare_clusters(ref, num, ref, num)["species_accuracy"] == 1.0
    m = compare_clusters(ref[:-3], num[:-3], ref, num)
    assert m["cn_error_shell3"] == pytest.approx(3 / (bond_shells(ref) == 3).sum())


def test_soap_similarity_rotation_invariant():
    cluster = _quartz_cluster()
    rotated = cluster.copy()
    rotated.positions = Rotation.from_rotvec([0.3, 0.3, 0.3]).apply(cluster.positions)
    assert soap_similarity(cluster, rotated) == pytest.approx(1.0, abs=1e-6)
    other = site_cluster(build_phase("stishovite"), 2)
    assert soap_similarity(cluster, other) < 0.99


def test_consensus_ranking_picks_the_sample_nearest_the_others():
    """Noisy copies of one site: the least perturbed copy sits nearest the others and is picked; an unrelated
    site ranks last; rotating each sample independently changes nothing (SOAP is rotation invariant)."""
    cluster = _quartz_cluster()
    rng = np.random.default_rng(3)
    noise = [0.25, 0.2, 0.02, 0.3, 0.15]
    samples = []
    for amplitude in noise:
        copy = cluster.copy()
        copy.positions[1:] += rng.normal(0, amplitude, (len(copy) - 1, 3))
        samples.append(copy)
    samples.append(site_cluster(build_phase("stishovite"), 2))
    order, score = consensus_ranking(samples)
    assert order[0] == int(np.argmin(noise)) and order[-1] == len(samples) - 1
    assert score.shape == (len(samples),) and (score <= 1 + 1e-9).all()
    direct = np.mean([soap_similarity(samples[order[0]], other) for i, other in enumerate(samples) if i != order[0]])
    assert score[order[0]] == pytest.approx(direct, rel=1e-9)
    rotated = []
    for atoms in samples:
        turned = atoms.copy()
        turned.positions = Rotation.from_rotvec(rng.normal(size=3)).apply(atoms.positions)
        rotated.append(turned)
    order_rotated, score_rotated = consensus_ranking(rotated)
    np.testing.assert_array_equal(order_rotated, order)
    np.testing.assert_allclose(score_rotated, score, atol=1e-6)
    single_order, _ = consensus_ranking(samples[:1])
    assert single_order.tolist() == [0]


def test_paper_alignment_of_small_clusters_is_the_global_optimum():
    """Under 9 atoms Okubo et al. try every pairing: the RMSD equals a brute-force minimum over all permutations
    with SciPy's ``Rotation.align_vectors`` (an independent Kabsch), for clusters of equal and of unequal size."""
    import itertools

    rng = np.random.default_rng(3)
    ref = np.vstack([np.zeros(3), rng.normal(0, 2.0, (6, 3))])
    for n_pred in (7, 5):
        pred = ref[:n_pred] + rng.normal(0, 0.3, (n_pred, 3))
        pred = np.vstack([pred[:1], rng.permutation(pred[1:])]) @ Rotation.random(random_state=4).as_matrix().T
        moved, pi, ri = align_clusters_paper(pred, ref)
        ours = np.sqrt(((moved[pi] - ref[ri]) ** 2).sum(1).mean())
        best = np.inf
        for chosen in itertools.permutations(range(1, len(ref)), n_pred - 1):
            q = ref[[0, *chosen]]
            rotation, _ = Rotation.align_vectors(q, pred)
            best = min(best, np.sqrt(((rotation.apply(pred) - q) ** 2).sum(1).mean()))
        np.testing.assert_allclose(ours, best, atol=1e-9)
