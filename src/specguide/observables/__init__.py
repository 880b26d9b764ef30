"""Differentiable forward models (observables): spectra of batches of structures on fixed grids.

The classes are loaded on first use (``from specguide.observables import PairDistribution`` works as usual), so
that reading the table of kinds (:mod:`specguide.observables.registry`) loads no model code.
"""

from __future__ import annotations

__all__ = [
    "BondAngleDistribution",
    "NeutronDiffraction",
    "PairDistribution",
    "PartialPDFs",
    "PartialStructureFactors",
    "RadialDistribution",
    "ReducedPairDistribution",
    "ReducedStructureFactor",
    "StructureFactor",
    "XRayDiffraction",
    "debye_intensity",
]


def __getattr__(name: str):
    """The observable classes of :data:`__all__`, imported from their modules when first asked for."""
    if name == "BondAngleDistribution":
        from specguide.observables import adf as module
    elif name in ("PairDistribution", "PartialPDFs", "RadialDistribution", "ReducedPairDistribution"):
        from specguide.observables import pdf as module
    elif name in __all__:
        from specguide.observables import scattering as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
