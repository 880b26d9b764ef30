"""Differentiable forward models (observables): spectra of batches of structures on fixed grids."""

from specguide.observables.adf import BondAngleDistribution
from specguide.observables.pdf import (
    PairDistribution,
    PartialPDFs,
    RadialDistribution,
    ReducedPairDistribution,
)
from specguide.observables.scattering import (  # noqa: E402, F401
    NeutronDiffraction,
    PartialStructureFactors,
    ReducedStructureFactor,
    StructureFactor,
    XRayDiffraction,
    debye_intensity,
)

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
