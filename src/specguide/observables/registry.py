"""Observables by their command-line kind, built from one flat set of grid options."""

from __future__ import annotations

from specguide.observables.adf import BondAngleDistribution
from specguide.observables.base import Observable
from specguide.observables.pdf import PairDistribution, RadialDistribution, ReducedPairDistribution
from specguide.observables.scattering import (
    NeutronDiffraction,
    ReducedStructureFactor,
    StructureFactor,
    XRayDiffraction,
)

REAL_SPACE_KINDS = ("gr", "pdf", "rdf")
RECIPROCAL_KINDS = ("sq", "fq", "xrd", "nd")
SURROGATE_KINDS = ("xanes", "exafs")  # need a trained surrogate checkpoint
KINDS = (*REAL_SPACE_KINDS, "adf", *RECIPROCAL_KINDS, *SURROGATE_KINDS)


def build_observable(
    kind: str,
    *,
    weighting: str = "number",
    r_max: float = 8.0,
    dr: float = 0.02,
    sigma: float = 0.15,
    q_min: float = 1.0,
    q_max: float = 20.0,
    dq: float = 0.05,
    adf_cutoff: float | None = None,
    surrogate: str | None = None,
    b_iso: float | None = None,
) -> Observable:
    """The observable for ``kind`` (gr, pdf, rdf, adf, sq, fq, xrd, nd).

    Real-space grids run to ``r_max`` (Å) in steps ``dr`` with Gaussian width ``sigma``; reciprocal-space
    grids run from ``q_min`` to ``q_max`` (Å⁻¹) in steps ``dq`` and use pairs up to ``r_max`` with a
    Lorch window; ``b_iso`` (Å²) sets their Debye–Waller pair damping (default: 0 for sq/fq, 1.5 for xrd/nd).
    ``adf_cutoff`` (Å) is the bond cutoff for angles (default: 1.3 × covalent radii sum).
    ``xanes`` / ``exafs`` need ``surrogate``, a checkpoint from ``specguide train-surrogate``.
    """
    real = dict(r_max=r_max, dr=dr, sigma=sigma, weighting=weighting)
    reciprocal = dict(q_min=q_min, q_max=q_max, dq=dq, r_max=r_max, b_iso=b_iso)
    if kind == "gr":
        return PairDistribution(**real)
    if kind == "pdf":
        return ReducedPairDistribution(**real)
    if kind == "rdf":
        return RadialDistribution(**real)
    if kind == "adf":
        return BondAngleDistribution(cutoff=adf_cutoff)
    if kind == "sq":
        return StructureFactor(weighting=weighting, **reciprocal)
    if kind == "fq":
        return ReducedStructureFactor(weighting=weighting, **reciprocal)
    if kind == "xrd":
        return XRayDiffraction(**reciprocal)
    if kind == "nd":
        return NeutronDiffraction(**reciprocal)
    if kind in SURROGATE_KINDS:
        if surrogate is None:
            raise ValueError(
                f"kind {kind!r} is computed by a learned surrogate: give its checkpoint (--surrogate CKPT)"
            )
        from specguide.observables.surrogate import SurrogateSpectrum

        return SurrogateSpectrum(surrogate, kind=kind)
    raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


def pair_range(observable: Observable) -> float:
    """The largest pair distance (Å) the observable reports or transforms; 0 for bond angles."""
    return float(getattr(observable, "r_max", 0.0) or 0.0)
