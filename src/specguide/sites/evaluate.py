"""Scoring generated clusters against references: alignment with unknown correspondence, per-shell metrics,
SOAP similarity, the template-matching baseline (Okubo et al.) and the consensus ranking that picks one of
several generated clusters without a reference.

Both clusters have the excited atom first, at the origin, so alignment is a rotation about the origin.
:func:`align_clusters`: candidate rotations from every assignment of the 3 predicted atoms nearest the excited
atom onto the 8 reference atoms nearest it (exhaustive, Kabsch on each), then, for the most promising ones,
Hungarian matching (``scipy.optimize.linear_sum_assignment``) of the whole clusters alternated with Kabsch on
the matched pairs; the excited atoms are always matched to each other.
"""

from __future__ import annotations

import itertools

import ase
import numpy as np
from scipy.optimize import linear_sum_assignment

from specguide.sites.clusters import BOND_CUTOFF, SHELLS


def kabsch(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proper rotations ``R`` minimising ``Σ |R p_i − q_i|²`` (no translation): batched ``p, q [..., n, 3]``.

    Returns ``(R [..., 3, 3], rmsd [...])`` in Å.
    """
    h = np.einsum("...ni,...nj->...ij", p, q)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("...ij,...jk->...ik", u, vt)))
    fix = np.ones(u.shape[:-1])
    fix[..., -1] = d
    r = np.einsum("...ji,...j,...kj->...ik", vt, fix, u)  # R = V diag(1,1,d) Uᵀ
    diff = np.einsum("...ij,...nj->...ni", r, p) - q
    return r, np.sqrt((diff**2).sum(-1).mean(-1))


def _hungarian_kabsch(pred: np.ndarray, ref: np.ndarray, rot: np.ndarray, max_iter: int = 10):
    """Refine ``rot`` by alternating Hungarian matching of the whole clusters (excited atoms matched to each
    other) and Kabsch on the matched pairs, until the matching stops changing.

    Returns ``(rotation, pred_index, ref_index, rmsd over the matched pairs in Å)``.
    """
    previous = None
    for _ in range(max_iter):
        moved = pred @ rot.T
        cost = ((moved[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
        cost[0, :] = 1e6
        cost[:, 0] = 1e6
        cost[0, 0] = 0.0  # the excited atoms are each other's match
        pi, ri = linear_sum_assignment(cost)
        rot, rmsd = kabsch(pred[pi], ref[ri])
        if previous is not None and np.array_equal(previous, ri):
            break
        previous = ri
    return rot, pi, ri, float(rmsd)


def align_clusters(
    pred: np.ndarray, ref: np.ndarray, n_anchor: int = 3, n_exhaustive: int = 8, n_refine: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align ``pred [n,3]`` onto ``ref [m,3]`` (both excited atom first at the origin, Å).

    Candidate rotations: Kabsch for every injective assignment of the ``n_anchor`` predicted atoms nearest
    the excited atom onto the ``n_exhaustive`` reference atoms nearest it (8·7·6 = 336 for 3 onto 8), so
    near-degenerate shell distances (crystal sites) cannot put different atoms into the two anchor sets. Each
    candidate is scored by the RMS distance of every predicted atom to its nearest reference atom; the best
    ``n_refine`` are refined by Hungarian matching plus Kabsch (:func:`_hungarian_kabsch`), and the one
    with the lowest whole-cluster RMSD wins.

    Returns ``(rotated pred [n,3], pred_index [k], ref_index [k])``: the matched pairs, k = min(n, m).
    """
    k = min(n_anchor, len(pred) - 1, len(ref) - 1)
    rotations = [np.eye(3)]
    if k >= 1:
        near_p = 1 + np.argsort(np.linalg.norm(pred[1:], axis=1), kind="stable")[:k]
        near_r = 1 + np.argsort(np.linalg.norm(ref[1:], axis=1), kind="stable")[: max(k, n_exhaustive)]
        maps = np.array(list(itertools.permutations(range(len(near_r)), k)))  # [C, k]
        p = np.broadcast_to(pred[near_p], (len(maps), k, 3))
        q = ref[near_r][maps]
        rots, _ = kabsch(p, q)
        moved = np.einsum("cij,nj->cni", rots, pred)
        nearest = np.sqrt(((moved[:, :, None, :] - ref[None, None]) ** 2).sum(-1).min(-1).mean(-1))
        rotations = rots[np.argsort(nearest, kind="stable")[:n_refine]]
    best = min((_hungarian_kabsch(pred, ref, rot) for rot in rotations), key=lambda r: r[3])
    rot, pi, ri, _ = best
    return pred @ rot.T, pi, ri


def align_clusters_paper(
    pred: np.ndarray, ref: np.ndarray, n_near: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align ``pred [n,3]`` onto ``ref [m,3]`` (excited atom first, at the origin, Å) as Okubo et al. (Methods) do:
    Kabsch for every pairing of the ``n_near`` atoms nearest the excited atom in each cluster (all of them in
    clusters under 9 atoms; 7! = 5040 pairings), the best of these rotations applied, then one Hungarian matching
    of the whole clusters and one Kabsch on the matched pairs. Unlike :func:`align_clusters` it does not search
    for the rotation that minimises the whole-cluster RMSD.

    Returns ``(rotated pred [n,3], pred_index [k], ref_index [k])``: the matched pairs, k = min(n, m).
    """
    near_p = 1 + np.argsort(np.linalg.norm(pred[1:], axis=1), kind="stable")[:n_near]
    near_r = 1 + np.argsort(np.linalg.norm(ref[1:], axis=1), kind="stable")[:n_near]
    rot = np.eye(3)
    if len(near_p) and len(near_r):
        short, long_ = (near_p, near_r) if len(near_p) <= len(near_r) else (near_r, near_p)
        maps = np.array(list(itertools.permutations(range(len(long_)), len(short))))  # [C, len(short)]
        a = pred[near_p] if short is near_p else pred[near_p][maps]
        b = ref[near_r][maps] if short is near_p else ref[near_r]
        rots, rmsd = kabsch(
            np.broadcast_to(a, (len(maps), *a.shape[-2:])), np.broadcast_to(b, (len(maps), *b.shape[-2:]))
        )
        rot = rots[int(np.argmin(rmsd))]
    rot, pi, ri, _ = _hungarian_kabsch(pred, ref, rot, max_iter=1)  # one matching, one Kabsch
    return pred @ rot.T, pi, ri


def bond_shells(positions: np.ndarray, shells: int = SHELLS, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """Bond distance (0 … shells) of every atom from atom 0 in a non-periodic cluster; ``shells + 1`` if
    unreachable within ``shells`` bonds."""
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    adj = (d < cutoff) & ~np.eye(len(positions), dtype=bool)
    level = np.full(len(positions), shells + 1)
    level[0] = 0
    reached = np.zeros(len(positions), dtype=bool)
    reached[0] = True
    frontier = reached.copy()
    for s in range(1, shells + 1):
        frontier = adj[frontier].any(0) & ~reached
        level[frontier] = s
        reached |= frontier
    return level


def compare_clusters(
    pred_pos: np.ndarray, pred_num: np.ndarray, ref_pos: np.ndarray, ref_num: np.ndarray
) -> dict[str, float]:
    """Aligned per-shell RMSD (Å; reference shells 1–3; ``rmsd_shell*`` after :func:`align_clusters`,
    ``rmsd_shell*_paper`` after Okubo et al.'s :func:`align_clusters_paper`), shell-count (coordination) relative
    errors, ``species_accuracy`` (Okubo et al.: 1 if the O fraction of the cluster is exactly right, else 0) and
    ``species_accuracy_atoms`` (matched atoms whose species agree, excited atom excluded)."""
    moved, pi, ri = align_clusters(pred_pos, ref_pos)
    ref_shell = bond_shells(ref_pos)
    pred_shell = bond_shells(moved)
    out: dict[str, float] = {}
    dist = np.linalg.norm(moved[pi] - ref_pos[ri], axis=1)
    for s in range(1, SHELLS + 1):
        sel = ref_shell[ri] == s
        out[f"rmsd_shell{s}"] = float(np.sqrt((dist[sel] ** 2).mean())) if sel.any() else float("nan")
        n_ref = int((ref_shell == s).sum())
        n_pred = int((pred_shell == s).sum())
        out[f"cn_error_shell{s}"] = abs(n_pred - n_ref) / n_ref if n_ref else float("nan")
    keep = ri != 0
    out["species_accuracy_atoms"] = (
        float((pred_num[pi][keep] == ref_num[ri][keep]).mean()) if keep.any() else float("nan")
    )
    out["species_accuracy"] = float((pred_num == 8).mean() == (ref_num == 8).mean())
    out["rmsd_all"] = float(np.sqrt((dist**2).mean()))
    moved, pi, ri = align_clusters_paper(pred_pos, ref_pos)  # Okubo et al.'s alignment, for their RMSD
    dist = np.linalg.norm(moved[pi] - ref_pos[ri], axis=1)
    for s in range(1, SHELLS + 1):
        sel = ref_shell[ri] == s
        out[f"rmsd_shell{s}_paper"] = float(np.sqrt((dist[sel] ** 2).mean())) if sel.any() else float("nan")
    out["rmsd_all_paper"] = float(np.sqrt((dist**2).mean()))
    out["n_pred"] = len(pred_pos)
    out["n_ref"] = len(ref_pos)
    return out


def soap_vectors(clusters: list[ase.Atoms], r_cut: float = 6.0) -> np.ndarray:
    """Unit-length SOAP vectors (dscribe; O, Si; r_cut Å, n_max 6, l_max 4, sigma 0.3 Å) centred on atom 0 of
    each cluster, ``[n_clusters, n_features]``."""
    from dscribe.descriptors import SOAP

    soap = SOAP(species=["O", "Si"], r_cut=r_cut, n_max=6, l_max=4, sigma=0.3, periodic=False)
    vectors = np.stack([soap.create(c, centers=[0]).ravel() for c in clusters])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def soap_similarity(a: ase.Atoms, b: ase.Atoms, r_cut: float = 6.0) -> float:
    """Cosine similarity of the SOAP vectors (:func:`soap_vectors`) of two clusters centred on atom 0."""
    va, vb = soap_vectors([a, b], r_cut)
    return float(va @ vb)


def consensus_ranking(clusters: list[ase.Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """Rank clusters generated for one spectrum by how representative each is of the others.

    Score = mean SOAP cosine similarity (:func:`soap_vectors`) to the other clusters; the first in the order
    is the medoid, the minimum-Bayes-risk pick when the model's samples scatter around the true site. Uses no
    reference structure. Returns ``(order [n] best first, score [n] in input order)``.
    """
    if len(clusters) == 1:
        return np.zeros(1, dtype=int), np.ones(1)
    v = soap_vectors(clusters)
    similarity = v @ v.T
    score = (similarity.sum(1) - np.diag(similarity)) / (len(clusters) - 1)
    return np.argsort(-score, kind="stable"), score


def template_match(
    spectrum: np.ndarray, train_spectra: np.ndarray, train_material: np.ndarray, exclude: str | None
) -> int:
    """Index of the training spectrum nearest ``spectrum`` by MSE, skipping material ``exclude``."""
    mse = ((train_spectra - spectrum[None]) ** 2).mean(1)
    if exclude is not None:
        mse = np.where(train_material == exclude, np.inf, mse)
    return int(np.argmin(mse))


def shell_summary(positions: np.ndarray, numbers: np.ndarray) -> dict:
    """Per-shell atom counts and species, mean distance to the excited atom (Å), and X–O–X angles (degrees)
    between the excited atom's first-shell neighbours."""
    shell = bond_shells(positions)
    r = np.linalg.norm(positions, axis=1)
    out: dict = {}
    for s in range(1, SHELLS + 1):
        sel = shell == s
        out[f"shell{s}"] = dict(
            count=int(sel.sum()),
            species={str(z): int((numbers[sel] == z).sum()) for z in np.unique(numbers[sel])},
            mean_distance=float(r[sel].mean()) if sel.any() else None,
            distances=np.round(np.sort(r[sel]), 3).tolist(),
        )
    first = positions[shell == 1]
    angles = []
    for i, j in itertools.combinations(range(len(first)), 2):
        cos = first[i] @ first[j] / (np.linalg.norm(first[i]) * np.linalg.norm(first[j]))
        angles.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    out["first_shell_angles_deg"] = np.round(angles, 2).tolist()
    return out
