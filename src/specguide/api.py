"""The Python API: one function per command of the command line, each taking ``ase.Atoms`` (or lists of them) as
well as files, and arrays where a command reads a spectrum.

=============================  ============================================================================
command                        function
=============================  ============================================================================
``specguide spectrum``         :func:`compute_spectrum` (``--kind xanes|exafs``: :func:`surrogate_spectrum`)
``specguide example``          :func:`example`
``specguide md melt-quench``   :func:`melt_quench`
``specguide train-prior``      :func:`train_prior`
``specguide train-surrogate``  :func:`train_surrogate`
``specguide generate``         :func:`generate` (``--config``: :func:`read_run_config`)
``specguide invert``           :func:`invert` (targets also as :meth:`Target.from_arrays`)
``specguide demo``             :func:`demo`
``specguide analyze``          :func:`analyze`
``specguide sites ...``        :func:`sites_train`, :func:`sites_generate`, :func:`sites_evaluate`
=============================  ============================================================================

Each returns what the command writes (structures, spectra, summaries) instead of writing it; the ``write_*``
functions named in their docstrings write the same files the command does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase
import numpy as np

from specguide.io import InputError, as_structures
from specguide.observables.spectrum import check_grid, compute_spectrum, surrogate_spectrum
from specguide.observables.target import Target

Structures = str | Path | ase.Atoms | Sequence[str | Path | ase.Atoms]

__all__ = [
    "Target",
    "analyze",
    "check_grid",
    "compute_spectrum",
    "demo",
    "example",
    "generate",
    "invert",
    "melt_quench",
    "read_run_config",
    "sites_evaluate",
    "sites_generate",
    "sites_train",
    "surrogate_spectrum",
    "train_prior",
    "train_surrogate",
]


def example(name: str) -> ase.Atoms:
    """A held-out replica of a bundled MD data set: ``"a-Si_1.5"``, or a family (``"a-Si"``: its 2.5 g/cm³ set)."""
    from specguide.pretrained import example_structure

    return example_structure(name)


def melt_quench(
    element: str | None = None,
    composition: str | None = None,
    *,
    density_g_cm3: float,
    n_atoms: int,
    n_replicas: int = 1,
    seed: int = 0,
    melt_time: float = 50.0,
    quench_rate: float = 100.0,
    **options: Any,
) -> list[ase.Atoms]:
    """Melt-quench ``n_replicas`` amorphous cells with LAMMPS: one ``element`` or a ``composition`` formula, at
    ``density_g_cm3``; ``melt_time`` (ps at 5000 K) and ``quench_rate`` (K/ps) set the protocol, ``options``
    (``potential``, ``workers``, ...) as :func:`specguide.simulate.lammps.melt_quench_replicas`."""
    from specguide.simulate.lammps import MeltQuenchProtocol, melt_quench_replicas

    protocol = MeltQuenchProtocol(melt_time=melt_time, quench_rate=quench_rate)
    return melt_quench_replicas(element, composition, density_g_cm3=density_g_cm3, n_atoms=n_atoms,
                                n_replicas=n_replicas, seed=seed, protocol=protocol, **options)  # fmt: skip


def train_prior(structures: Structures, out: str | Path, **options: Any) -> Path:
    """Train a score prior on ``structures`` (Atoms or files, every frame) into the checkpoint ``out``; ``options``
    (``max_time_minutes``, ``max_epochs``, ``init_from``, ``config``, ...) as
    :func:`specguide.training.prior.train_prior`."""
    from specguide.training.prior import train_prior as run

    return run(as_structures(structures), out, **options)


def train_surrogate(
    structures: str | Path | Sequence[str | Path],
    out: str | Path,
    spectra: str | Path | Sequence[str | Path] | None = None,
    *,
    absorber: str | int | None = None,
    **options: Any,
) -> Path:
    """Train a per-atom XANES / EXAFS surrogate on structure files paired by name with per-atom spectrum files
    (:func:`specguide.datasets.spectra.load_spectra_dataset`; ``spectra=None``: arrays inside extxyz files);
    ``options`` (``kind``, ``max_time_minutes``, ``config``, ...) as
    :func:`specguide.training.surrogate.train_surrogate`."""
    from specguide.datasets.spectra import load_spectra_dataset
    from specguide.training.surrogate import train_surrogate as run

    return run(load_spectra_dataset(structures, spectra, absorber=absorber), out, absorber=absorber, **options)


def generate(prior: str | Path, config=None, *, init: Structures = "random", **settings: Any):
    """Structures from a prior: a :class:`~specguide.diffusion.sampler.GenerateConfig` (``config``) with
    ``settings`` (its field names: ``density_g_cm3``, ``n_atoms``, ``n_replicas``, ``seed``, ...) replacing its
    fields; ``init``: ``"random"`` or seed structures (Atoms or files). Returns a
    :class:`~specguide.diffusion.sampler.Generation`; :func:`specguide.io.write_results` writes what the command does.
    """
    from specguide.diffusion.sampler import generate as run

    start = init if isinstance(init, str) and init == "random" else as_structures(init)
    return run(prior, config, init=start, **settings)


def invert(prior: str | Path, targets: Sequence[str | Target] | None = None, config=None, **settings: Any):
    """Structures whose spectra match ``targets``: ``KIND:FILE[:key=value,...]`` strings or
    :class:`~specguide.observables.target.Target` objects (e.g. :meth:`Target.from_arrays`), an
    :class:`~specguide.diffusion.inversion.InvertConfig` (``config``) with ``settings`` replacing its fields
    (``density_g_cm3``, ``n_atoms``, ``strength``, ...; ``init`` may be structures or a file). Returns an
    :class:`~specguide.diffusion.inversion.InversionResult`;
    :func:`specguide.diffusion.inversion.write_inversion` writes what the command does."""
    from specguide.diffusion.inversion import invert as run

    init = settings.pop("init", None)
    if init is not None and not (isinstance(init, str) and init in ("random", "crystal")):
        init = as_structures(init)
    return run(prior, targets, config, init=init, **settings)


def demo(out: str | Path = "specguide-demo", **options: Any):
    """The inversion of the g(r) of a held-out a-Si MD replica with the bundled prior, written into ``out``;
    returns ``(result, comparison with the replica)``; ``options`` as :func:`specguide.demo.run_demo`."""
    from specguide.demo import run_demo

    return run_demo(out, **options)


def analyze(
    structures: Structures,
    reference: Structures | None = None,
    cutoffs: dict | Sequence[str] | float | None = None,
    **options: Any,
):
    """Coordination, angles, rings, order and energy of ``structures`` (Atoms or files), against ``reference``;
    ``cutoffs``: ``{"Si-Si": 2.85}`` or ``["Si-Si=2.85"]``; ``options`` (``max_ring``, ``energy``) as
    :func:`specguide.analysis.report.analyze`; :func:`specguide.analysis.report.write_analysis` writes the files."""
    from specguide.analysis.report import analyze as run
    from specguide.analysis.report import parse_cutoffs

    if isinstance(cutoffs, (list, tuple)):
        cutoffs = parse_cutoffs(cutoffs)
    references = None if reference is None else as_structures(reference)
    return run(as_structures(structures), reference=references, cutoffs=cutoffs or None, **options)


def sites_train(out: str | Path, data: str | Path | None = None, *, test_materials=None, kinds=None, **options):
    """Train the EGNN site denoiser on a site data set (default: the bundled one), holding ``test_materials`` out
    and training on site ``kinds`` (defaults: :mod:`specguide.sites.defaults`); ``options`` as
    :func:`specguide.training.sites.train_site_model`. Returns the training log."""
    from specguide.sites.dataset import load_site_dataset, split_by_material
    from specguide.sites.defaults import HELD_OUT_MATERIALS, TRAIN_KINDS
    from specguide.training.sites import train_site_model

    held_out = list(HELD_OUT_MATERIALS if test_materials is None else test_materials)
    train, _ = split_by_material(load_site_dataset(data), held_out, list(TRAIN_KINDS if kinds is None else kinds))
    if len(train) == 0:
        raise InputError("no training sites left after the split; check the test materials and kinds")
    return train_site_model(train, out, **options)


def sites_generate(spectrum: str | Path, model: str | Path | None = None, **options: Any):
    """The 3-shell clusters around an absorber from its near-edge spectrum file (most representative first) and a
    summary; ``options`` (``samples``, ``n_atoms``, ``steps``, ``seed``) as
    :func:`specguide.sites.api.generate_sites`; :func:`specguide.sites.api.write_generation` writes the files."""
    from specguide.sites.api import generate_sites
    from specguide.sites.defaults import DEFAULT_SITE_MODEL

    return generate_sites(model or DEFAULT_SITE_MODEL, spectrum, **options)


def sites_evaluate(model: str | Path | None = None, data: str | Path | None = None, *, test_materials=None,
                   max_sites: int | None = None, **options: Any) -> dict:  # fmt: skip
    """Aligned RMSD, CN error, species accuracy and SOAP against template matching on held-out sites; ``options``
    (``samples``, ``steps``, ``seed``) as :func:`specguide.sites.api.evaluate_sites`."""
    from specguide.sites.api import evaluate_sites
    from specguide.sites.dataset import load_site_dataset, split_by_material
    from specguide.sites.defaults import DEFAULT_SITE_MODEL, HELD_OUT_MATERIALS, TRAIN_KINDS

    held_out = list(HELD_OUT_MATERIALS[:1] if test_materials is None else test_materials)
    train, test = split_by_material(load_site_dataset(data), held_out, list(TRAIN_KINDS))
    if max_sites is not None:
        test = test.subset(np.arange(len(test)) < max_sites)
    return evaluate_sites(model or DEFAULT_SITE_MODEL, test, train, **options)


def read_run_config(path: str | Path, command: str) -> tuple[str, object, str]:
    """``(prior, request, init)`` of the ``config.json`` a ``generate`` or ``invert`` result wrote: the request is
    the :class:`~specguide.diffusion.sampler.GenerateConfig` or :class:`~specguide.diffusion.inversion.InvertConfig`
    it ran (the same seed gives the same structures again); ``init`` is ``"random"``, ``"crystal"`` or the
    structure file it started from. ``InputError`` for a file that records no such request."""
    from specguide.diffusion.inversion import InvertConfig
    from specguide.diffusion.sampler import GenerateConfig

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--config {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--config {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get(command), dict) or "prior" not in data:
        raise InputError(f"--config {path}: records no {command} request; give the config.json of a "
                         f"`specguide {command}` result")  # fmt: skip
    kind = {"generate": GenerateConfig, "invert": InvertConfig}[command]
    request = kind.from_dict(data[command])
    init = str(data.get("init", "random")) if command == "generate" else request.init
    return str(data["prior"]), request, init
