"""Order parameters: Steinhardt q4/q6 (freud), Voronoi volumes (scipy/Qhull), crystallinity by polyhedral template
matching (OVITO, optional: ``pip install "specguide[analysis]"``).

- Steinhardt ``q_l`` per atom (freud, no averaging) over the neighbours within ``r_cut`` (Å, e.g. the bond
  cutoff) or the ``n`` nearest neighbours; fcc with 12 neighbours: q4 = 0.191, q6 = 0.575.
- Voronoi cell volume per atom (Å³); the volumes tile the periodic cell.
- PTM (OVITO ``PolyhedralTemplateMatchingModifier``, RMSD cutoff 0.1, cubic and hexagonal diamond enabled):
  the fraction of atoms in each structure type; ``other`` = not crystalline.
- Voronoi indices (OVITO ``VoronoiAnalysisModifier``, plain Voronoi, no face or edge threshold): per atom the counts
  ``<n3,n4,n5,n6>`` of its cell's faces with 3, 4, 5 and 6 edges; fcc is <0,12,0,0> (rhombic dodecahedron), bcc
  <0,6,0,8> (truncated octahedron), the centre of an icosahedron <0,0,12,0> (the icosahedral clusters of metallic
  glasses, Cu-centred in Cu–Zr).
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np

OVITO_HINT = 'crystallinity needs OVITO: pip install "specguide[analysis]" (or pip install ovito)'


def _freud_system(atoms: ase.Atoms):
    import freud

    box = freud.box.Box.from_matrix(np.asarray(atoms.cell[:]).T)  # freud: box vectors as columns
    points = box.wrap(atoms.get_positions() - np.asarray(atoms.cell[:]).sum(0) / 2)
    return box, points.astype(np.float64)


def steinhardt(atoms: ase.Atoms, l: int, neighbors: float | int) -> np.ndarray:
    """Per-atom Steinhardt ``q_l``; ``neighbors``: a cutoff in Å (float) or a number of nearest neighbours (int)."""
    import freud

    box, points = _freud_system(atoms)
    query = (
        {"num_neighbors": neighbors} if isinstance(neighbors, int) else {"r_max": float(neighbors), "exclude_ii": True}
    )
    order = freud.order.Steinhardt(l)
    order.compute((box, points), neighbors=query)
    return np.asarray(order.particle_order, dtype=np.float64)


def voronoi_volumes(atoms: ase.Atoms) -> np.ndarray:
    """Voronoi cell volume of every atom (Å³); they tile the periodic cell.

    Qhull (scipy) on the atoms and their 26 neighbouring images; each atom's cell is the convex hull of its
    Voronoi vertices. (freud's Voronoi crashes, segmentation fault, in a process that has started LAMMPS,
    e.g. a test session that also runs the MD tests; scipy's does not.)
    """
    from scipy.spatial import ConvexHull, Voronoi

    cell = np.asarray(atoms.cell[:])
    positions = atoms.get_positions(wrap=True)
    shifts = np.array([[i, j, k] for i in (0, -1, 1) for j in (0, -1, 1) for k in (0, -1, 1)]) @ cell  # own cell first
    points = (positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    voronoi = Voronoi(points)
    regions = [voronoi.regions[r] for r in voronoi.point_region[: len(atoms)]]
    if any(-1 in region or not region for region in regions):
        raise ValueError("a Voronoi cell is unbounded: the cell is too thin or skewed for 26 periodic images")
    return np.array([ConvexHull(voronoi.vertices[region]).volume for region in regions])


def ovito_available() -> bool:
    """Whether the optional OVITO package can be imported."""
    try:
        import ovito.modifiers  # noqa: F401
    except Exception:  # ImportError, or a broken Qt install
        return False
    return True


def crystallinity(structures: Sequence[ase.Atoms]) -> dict:
    """Fraction of atoms per PTM structure type, pooled: ``{"available": True, "fractions": {...}}``, or
    ``{"available": False, "reason": ...}`` when OVITO is not installed."""
    if not ovito_available():
        return {"available": False, "reason": OVITO_HINT}
    from ovito.io.ase import ase_to_ovito
    from ovito.modifiers import PolyhedralTemplateMatchingModifier
    from ovito.pipeline import Pipeline, StaticSource

    modifier = PolyhedralTemplateMatchingModifier(rmsd_cutoff=0.1)
    for kind in (PolyhedralTemplateMatchingModifier.Type.CUBIC_DIAMOND,
                 PolyhedralTemplateMatchingModifier.Type.HEX_DIAMOND):  # fmt: skip
        modifier.structures[kind].enabled = True
    names = {int(t.id): t.name.lower().replace(" ", "_") for t in modifier.structures}
    counts: dict[str, int] = {}
    total = 0
    for atoms in structures:
        pipeline = Pipeline(source=StaticSource(data=ase_to_ovito(atoms)))
        pipeline.modifiers.append(modifier)
        types = np.asarray(pipeline.compute().particles["Structure Type"])
        for value, count in zip(*np.unique(types, return_counts=True)):
            name = names.get(int(value), str(int(value)))
            counts[name] = counts.get(name, 0) + int(count)
        total += len(atoms)
    return {
        "available": True,
        "method": "OVITO PTM, rmsd_cutoff 0.1",
        "fractions": {k: v / total for k, v in sorted(counts.items())},
    }


ICOSAHEDRAL = (0, 0, 12, 0)
"""The Voronoi index ``<n3,n4,n5,n6>`` of an atom at the centre of an icosahedron (12 pentagonal faces)."""


def voronoi_indices(atoms: ase.Atoms) -> np.ndarray:
    """Per-atom face counts by number of edges (OVITO): ``[N, k]``, ``k >= 6``, with column ``m`` the faces with
    ``m + 1`` edges (so columns 2-5 are ``n3..n6``); ``ImportError`` with the install hint without OVITO."""
    if not ovito_available():
        raise ImportError(OVITO_HINT.replace("crystallinity", "Voronoi indices"))
    from ovito.io.ase import ase_to_ovito
    from ovito.modifiers import VoronoiAnalysisModifier
    from ovito.pipeline import Pipeline, StaticSource

    pipeline = Pipeline(source=StaticSource(data=ase_to_ovito(atoms)))
    pipeline.modifiers.append(VoronoiAnalysisModifier(compute_indices=True))
    counts = np.asarray(pipeline.compute().particles["Voronoi Index"], dtype=np.int64)
    return np.pad(counts, ((0, 0), (0, max(0, 6 - counts.shape[1]))))  # OVITO stops at the largest face present


def _index_label(row: np.ndarray) -> str:
    """``<n3,n4,n5,n6>``, with ``+k`` when the cell also has k faces of seven or more edges."""
    label = "<" + ",".join(str(int(v)) for v in row[2:6]) + ">"
    extra = int(row[6:].sum())
    return label + (f"+{extra}" if extra else "")


def voronoi_index_statistics(structures: Sequence[ase.Atoms], top: int = 10) -> dict:
    """Fractions of the most common Voronoi indices around each species, pooled over the ensemble, and the
    icosahedral (<0,0,12,0>) fraction per species with its spread over structures (fractions, 0-1).

    ``{"available": False, "reason": ...}`` when OVITO is not installed."""
    if not ovito_available():
        return {"available": False, "reason": OVITO_HINT.replace("crystallinity", "Voronoi indices")}
    labels, species, structure_of = [], [], []
    for k, atoms in enumerate(structures):
        labels += [_index_label(row) for row in voronoi_indices(atoms)]
        species += atoms.get_chemical_symbols()
        structure_of += [k] * len(atoms)
    labels_a, species_a, structure_a = np.array(labels), np.array(species), np.array(structure_of)
    icosahedron = "<" + ",".join(map(str, ICOSAHEDRAL)) + ">"
    by_species: dict[str, dict] = {}
    for symbol in ["all", *sorted(set(species))]:
        mask = np.ones(len(labels_a), bool) if symbol == "all" else species_a == symbol
        names, counts = np.unique(labels_a[mask], return_counts=True)
        order_ = np.argsort(-counts, kind="stable")[:top]
        per_structure = [
            float(np.mean(labels_a[mask & (structure_a == k)] == icosahedron))
            for k in range(len(structures))
            if np.any(mask & (structure_a == k))
        ]
        by_species[symbol] = {
            "n_atoms": int(mask.sum()),
            "icosahedral": {
                "mean": float(np.mean(labels_a[mask] == icosahedron)),
                "std": float(np.std(per_structure)),
                "per_structure": [round(v, 5) for v in per_structure],
            },
            "top_indices": {str(names[i]): round(float(counts[i]) / int(mask.sum()), 5) for i in order_},
        }
    return {
        "available": True,
        "method": "OVITO VoronoiAnalysisModifier, plain Voronoi (no face/edge threshold); index <n3,n4,n5,n6>, "
        "+k = k faces with 7+ edges",
        "centre": by_species,
    }
