"""The requests of ``specguide sites train/generate/evaluate`` as typed configs; ``config.json`` (or the
evaluation's ``config`` entry) is their serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from specguide.config import Config
from specguide.sites.defaults import DEFAULT_SITE_MODEL, HELD_OUT_MATERIALS, TRAIN_KINDS


@dataclass
class SiteTrainConfig(Config):
    """Train the EGNN site denoiser: site data set ``data`` (None: the bundled one), ``test_materials`` held out,
    site ``kinds`` trained on; network ``hidden`` width, ``layers`` and ``prediction`` (``x0`` or ``eps``);
    ``max_minutes`` (min) or ``max_steps``, ``batch_size`` clusters, AdamW ``lr``, ``seed``; ``init``: a checkpoint
    to continue from; ``device``: where it trains (``auto``, ``cpu``, ``cuda[:K]``)."""

    data: str | None = None
    test_materials: list[str] = field(default_factory=lambda: list(HELD_OUT_MATERIALS))
    kinds: list[str] = field(default_factory=lambda: list(TRAIN_KINDS))
    hidden: int = 64
    layers: int = 4
    prediction: str = "x0"
    max_minutes: float = 10.0
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 5e-4
    seed: int = 0
    init: str | None = None
    device: str = "auto"


@dataclass
class SiteGenerateConfig(Config):
    """Generate ``samples`` clusters of ``n_atoms`` atoms (None: predicted from the spectrum) around the absorber
    of the two-column ``spectrum`` file (eV relative to the edge, intensity) with ``model`` in ``steps`` denoising
    steps from ``seed``, on ``device`` (``auto``, ``cpu``, ``cuda[:K]``; ``summary.json`` records the one used).
    ``species``: element symbols the clusters may hold (the sample's elements; None: all the model's)."""

    spectrum: str = ""
    model: str = DEFAULT_SITE_MODEL
    samples: int = 8
    n_atoms: int | None = None
    steps: int = 200
    seed: int = 0
    device: str = "auto"
    species: list[str] | None = None

    def check(self) -> None:
        """``ValueError`` naming the option for sizes that cannot run."""
        if self.samples < 1 or self.steps < 1 or (self.n_atoms is not None and self.n_atoms < 2):
            raise ValueError("--samples and --steps must be ≥ 1 and --atoms ≥ 2")
        from ase.data import atomic_numbers

        unknown = [s for s in self.species or [] if s not in atomic_numbers]
        if unknown:
            raise ValueError(f"--species: {unknown} are not element symbols (give e.g. O,Si)")


@dataclass
class SiteEvaluateConfig(Config):
    """Score ``model`` on the sites of ``test_materials`` in ``data`` (None: the bundled set; at most ``max_sites``)
    with ``samples`` clusters per site in ``steps`` denoising steps from ``seed``, against template matching on the
    training materials, on ``device`` (``auto``, ``cpu``, ``cuda[:K]``; the result records the one used)."""

    model: str = DEFAULT_SITE_MODEL
    data: str | None = None
    test_materials: list[str] = field(default_factory=lambda: list(HELD_OUT_MATERIALS[:1]))
    samples: int = 8
    steps: int = 100
    max_sites: int | None = None
    seed: int = 0
    device: str = "auto"
