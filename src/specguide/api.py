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
``specguide generate``         :func:`generate` (``--config``: :func:`read_run_config`; ``--seeds``:
                               :func:`generate_seeds`)
``specguide invert``           :func:`invert` (targets also as :meth:`Target.from_arrays`; ``--seeds``:
                               :func:`invert_seeds`)
``specguide demo``             :func:`demo`
``specguide analyze``          :func:`analyze`
``specguide sites ...``        :func:`sites_train`, :func:`sites_generate`, :func:`sites_evaluate`
=============================  ============================================================================

Each returns what the command writes (structures, spectra, summaries) instead of writing it; the ``write_*``
functions named in their docstrings write the same files the command does.
"""

from __future__ import annotations

import dataclasses
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
    "generate_seeds",
    "invert",
    "invert_seeds",
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
    config=None,
    *,
    workers: int = 1,
    done=None,
    on_replica=None,
    executor=None,
    **settings: Any,
) -> list[ase.Atoms]:
    """Melt-quench amorphous cells with LAMMPS: a :class:`~specguide.simulate.lammps.MeltQuenchConfig`
    (``config``) with ``settings`` (its field names: ``density_g_cm3``, ``n_atoms``, ``n_replicas``, ``seed``,
    ``potential``, ``protocol``; or ``melt_time`` in ps at 5000 K and ``quench_rate`` in K/ps for the protocol)
    replacing its fields; ``workers``, ``done``, ``on_replica`` and ``executor`` as
    :func:`specguide.simulate.lammps.melt_quench_replicas` (parallel replicas, resuming, saving each at once, replicas
    on a Dask cluster or a batch queue)."""
    from specguide.simulate.lammps import MeltQuenchConfig, melt_quench_replicas

    config = config or MeltQuenchConfig()
    timing = {k: settings.pop(k) for k in ("melt_time", "quench_rate") if k in settings}
    if element is not None or composition is not None:
        settings.update(element=element, composition=composition)
    config = config.replace(**settings)
    if timing:
        config = config.replace(protocol=dataclasses.replace(config.protocol, **timing))
    config.check()
    return melt_quench_replicas(config.element, config.composition, density_g_cm3=config.density_g_cm3,
                                n_atoms=config.n_atoms, n_replicas=config.n_replicas, seed=config.seed,
                                protocol=config.protocol, potential=config.potential, workers=workers, done=done,
                                on_replica=on_replica, executor=executor)  # fmt: skip


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
    (:func:`specguide.datasets.spectra.load_spectra_dataset`; ``spectra=None``: arrays inside extxyz files), or on
    a :class:`~specguide.datasets.spectra.SpectraDataset` already read; ``options`` (``kind``, ``max_time_minutes``,
    ``config``, ...) as :func:`specguide.training.surrogate.train_surrogate`."""
    from specguide.datasets.spectra import SpectraDataset, load_spectra_dataset
    from specguide.training.surrogate import train_surrogate as run

    if not isinstance(structures, SpectraDataset):
        structures = load_spectra_dataset(structures, spectra, absorber=absorber)
    return run(structures, out, absorber=absorber, **options)


def generate(prior: str | Path, config=None, *, init: Structures = "random", **settings: Any):
    """Structures from a prior: a :class:`~specguide.diffusion.sampler.GenerateConfig` (``config``) with
    ``settings`` (its field names: ``density_g_cm3``, ``n_atoms``, ``n_replicas``, ``seed``, ...) replacing its
    fields; ``init``: ``"random"`` or seed structures (Atoms or files). Returns a
    :class:`~specguide.diffusion.sampler.Generation`; :func:`specguide.diffusion.sampler.write_generation` writes
    what the command does.
    """
    from specguide.diffusion.sampler import generate as run

    start = init if isinstance(init, str) and init == "random" else as_structures(init)
    return run(prior, config, init=start, **settings)


def generate_seeds(prior: str | Path, seeds: Sequence[int], config=None, *, init: Structures = "random",
                   **settings: Any):  # fmt: skip
    """One :func:`generate` per seed (``executor=`` an :class:`~specguide.executors.ExecutorConfig` runs them on a
    Dask cluster or a batch queue; ``on_result(k, generation)`` sees each as it arrives): a list of
    :class:`~specguide.diffusion.sampler.Generation`, the k-th what ``generate(..., seed=seeds[k])`` gives; see
    :func:`specguide.diffusion.sampler.generate_seeds`."""
    from specguide.diffusion.sampler import generate_seeds as run

    start = init if isinstance(init, str) and init == "random" else as_structures(init)
    return run(prior, seeds, config, init=start, **settings)


def invert(prior: str | Path, targets: Sequence[str | Target] | None = None, config=None, **settings: Any):
    """Structures whose spectra match ``targets``: ``KIND:FILE[:key=value,...]`` strings or
    :class:`~specguide.observables.target.Target` objects (e.g. :meth:`Target.from_arrays`), an
    :class:`~specguide.diffusion.inversion.InvertConfig` (``config``) with ``settings`` replacing its fields
    (``density_g_cm3``, ``n_atoms``, ``strength``, ...; ``init`` may be structures or a file; ``executor``: where a
    density scan runs, an :class:`~specguide.executors.ExecutorConfig`). Returns an
    :class:`~specguide.diffusion.inversion.InversionResult`;
    :func:`specguide.diffusion.inversion.write_inversion` writes what the command does."""
    from specguide.diffusion.inversion import invert as run

    init = settings.pop("init", None)
    if init is not None and not (isinstance(init, str) and init in ("random", "crystal")):
        init = as_structures(init)
    return run(prior, targets, config, init=init, **settings)


def invert_seeds(prior: str | Path, targets: Sequence[str | Target] | None, seeds: Sequence[int], config=None,
                 **settings: Any):  # fmt: skip
    """One :func:`invert` per seed (``executor=`` an :class:`~specguide.executors.ExecutorConfig` runs them on a
    Dask cluster or a batch queue; ``on_result(k, result)`` sees each as it arrives): a list of
    :class:`~specguide.diffusion.inversion.InversionResult`, the k-th what ``invert(..., seed=seeds[k])`` gives;
    see :func:`specguide.diffusion.inversion.invert_seeds`."""
    from specguide.diffusion.inversion import invert_seeds as run

    init = settings.pop("init", None)
    if init is not None and not (isinstance(init, str) and init in ("random", "crystal")):
        init = as_structures(init)
    return run(prior, targets, seeds, config, init=init, **settings)


def demo(out: str | Path = "specguide-demo", **options: Any):
    """The inversion of the g(r) of a held-out a-Si MD replica with the bundled prior, written into ``out``;
    returns ``(result, comparison with the replica)``; ``options`` as :func:`specguide.demo.run_demo`."""
    from specguide.demo import run_demo

    return run_demo(out, **options)


def analyze(
    structures: Structures,
    reference: Structures | None = None,
    cutoffs: dict | Sequence[str] | float | None = None,
    config=None,
    **settings: Any,
):
    """Coordination, angles, rings, order and energy of ``structures`` (Atoms or files), against ``reference``;
    ``cutoffs``: ``{"Si-Si": 2.85}`` or ``["Si-Si=2.85"]``; an :class:`~specguide.analysis.report.AnalyzeConfig`
    (``config``) with ``settings`` (``max_ring``, ``energy``, ``potential``, ``device``) replacing its fields;
    :func:`specguide.analysis.report.write_analysis` writes the files."""
    from specguide.analysis.report import AnalyzeConfig, parse_cutoffs
    from specguide.analysis.report import analyze as run

    if isinstance(cutoffs, (list, tuple)):
        cutoffs = parse_cutoffs(cutoffs)
    config = (config or AnalyzeConfig()).replace(**settings, **({} if cutoffs is None else {"cutoffs": cutoffs}))
    references = None if reference is None else as_structures(reference)
    return run(as_structures(structures), reference=references or None, cutoffs=config.cutoffs or None,
               max_ring=config.max_ring, energy=config.energy, potential=config.potential,
               device=config.device)  # fmt: skip


def sites_train(out: str | Path, config=None, **settings: Any) -> dict:
    """Train the EGNN site denoiser into the checkpoint ``out``: a :class:`~specguide.sites.config.SiteTrainConfig`
    (``config``; default: the bundled data set, held-out materials and site kinds of :mod:`specguide.sites.defaults`)
    with ``settings`` (its field names) replacing its fields. Returns the training log."""
    from specguide.models.egnn import EGNNConfig
    from specguide.sites.config import SiteTrainConfig
    from specguide.sites.dataset import load_site_dataset, split_by_material
    from specguide.training.sites import data_species, train_site_model

    config = (config or SiteTrainConfig()).replace(**settings)
    train, _ = split_by_material(load_site_dataset(config.data), list(config.test_materials), list(config.kinds))
    if len(train) == 0:
        raise InputError("no training sites left after the split; check the test materials and kinds")
    largest = max(len(c) for c in train.clusters)
    try:
        species = data_species(train)
    except ValueError as exc:
        raise InputError(f"{config.data or 'the bundled site data set'}: {exc}") from None
    try:
        network = EGNNConfig(n_spectrum=train.spectra.shape[1], hidden=config.hidden, layers=config.layers,
                             max_atoms=max(40, largest), prediction=config.prediction,
                             species=species)  # fmt: skip
    except ValueError as exc:
        raise InputError(f"--prediction: {exc}") from None
    return train_site_model(train, out, max_minutes=config.max_minutes, max_steps=config.max_steps,
                            batch_size=config.batch_size, lr=config.lr, config=network, seed=config.seed,
                            init=config.init, device=config.device)  # fmt: skip


def sites_generate(spectrum: str | Path | None = None, model: str | Path | None = None, config=None, **settings: Any):
    """The 3-shell clusters around an absorber from its near-edge ``spectrum`` file (most representative first)
    and a summary: a :class:`~specguide.sites.config.SiteGenerateConfig` (``config``) with ``settings``
    (``samples``, ``n_atoms``, ``steps``, ``seed``) replacing its fields;
    :func:`specguide.sites.api.write_generation` writes the files."""
    from specguide.sites.api import generate_sites
    from specguide.sites.config import SiteGenerateConfig

    given = {k: str(v) for k, v in (("spectrum", spectrum), ("model", model)) if v is not None}
    config = (config or SiteGenerateConfig()).replace(**given, **settings)
    config.check()
    return generate_sites(config.model, config.spectrum, samples=config.samples, n_atoms=config.n_atoms,
                          steps=config.steps, seed=config.seed, device=config.device,
                          species=config.species)  # fmt: skip


def sites_evaluate(model: str | Path | None = None, data: str | Path | None = None, config=None,
                   **settings: Any) -> dict:  # fmt: skip
    """Aligned RMSD, CN error, species accuracy and SOAP against template matching on held-out sites: a
    :class:`~specguide.sites.config.SiteEvaluateConfig` (``config``) with ``settings`` (``test_materials``,
    ``max_sites``, ``samples``, ``steps``, ``seed``) replacing its fields."""
    from specguide.sites.api import evaluate_sites
    from specguide.sites.config import SiteEvaluateConfig
    from specguide.sites.dataset import load_site_dataset, split_by_material
    from specguide.sites.defaults import TRAIN_KINDS

    given = {k: str(v) for k, v in (("model", model), ("data", data)) if v is not None}
    config = (config or SiteEvaluateConfig()).replace(**given, **settings)
    train, test = split_by_material(load_site_dataset(config.data), list(config.test_materials), list(TRAIN_KINDS))
    if config.max_sites is not None:
        test = test.subset(np.arange(len(test)) < config.max_sites)
    return evaluate_sites(config.model, test, train, samples=config.samples, steps=config.steps, seed=config.seed,
                          device=config.device)  # fmt: skip


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
