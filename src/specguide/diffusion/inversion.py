"""Spectroscopy-guided inversion: measured spectra in, an ensemble of structures that reproduces them out.

One call, :func:`invert`, does what ``specguide invert`` does:

1. loads the prior (bundled name or checkpoint) and the targets (``KIND:FILE[:key=value,...]`` or
   :class:`~specguide.diffusion.guidance.Target` objects) onto grids that fit the cell;
2. generates replicas with guidance (:class:`~specguide.diffusion.guidance.SpectralGuidance`):
   ``schedule="two-stage"`` (GLASS, default for random starts): an unconditional pass from t = 1, then
   re-noising to ``t_guide`` and a guided pass; ``schedule="guided"``: one pass from t = 1 with the guidance on
   for t ≤ ``t_guide``. Starts from given structures (a crystal seed, liquid snapshots) skip the first stage;
3. optionally scans the density first (several values): a few replicas per density, scored by a
   shell-weighted real-space loss (the target's g(r)-type curve beyond its first coordination shell, where
   density shows most; or ``scan_range``), and runs the full ensemble at the best density;
4. reports each target's loss per replica and of the ensemble mean, coordination and distances.

:func:`write_inversion` writes ``structures.extxyz``, ``config.json``, ``summary.json``, ``report.png`` and
one ``fit_<kind>_<file>.dat`` per target (grid, target, ensemble mean, std).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np
import torch
from ase.data import atomic_masses, chemical_symbols

from specguide.analysis.summary import summarize
from specguide.chemistry import numbers_for_composition, parse_composition, to_z
from specguide.config import Config, check_seeds, field_names
from specguide.devices import device_record, resolve_device
from specguide.diffusion.guidance import DEFAULT_STRENGTH, GuidanceConfig, SpectralGuidance
from specguide.diffusion.sampler import (
    PRIOR_META_KEYS,
    GenerateConfig,
    SamplerCheckpoint,
    generate,
    prior_chemistry,
)
from specguide.executors import ExecutorConfig, run_tasks
from specguide.graph import batch_from_atoms, perpendicular_widths
from specguide.io import InputError, read_structures, write_atomically, write_results
from specguide.observables.measured import TargetSpec, load_target, parse_target_spec
from specguide.observables.registry import SPECS, SURROGATE_KINDS
from specguide.observables.target import Target
from specguide.pretrained import load_prior, prior_families, resolve_prior
from specguide.structure import cell_of_volume, cubic_cell_side, number_density, volume_at_density

__all__ = ["DEFAULT_STRENGTH", "InvertConfig", "InversionResult", "invert", "invert_seeds", "write_inversion"]


@dataclass
class InvertConfig(Config):
    """What :func:`invert` is asked for (``config.json``'s ``"invert"``; see :func:`invert` for each setting).

    ``targets``: ``KIND:FILE[:key=value,...]`` strings; ``density_g_cm3``: one density or a scan; ``sampling``: the
    :class:`~specguide.diffusion.sampler.GenerateConfig` of every pass (its density is the one being run);
    ``guidance``: the :class:`~specguide.diffusion.guidance.GuidanceConfig`; ``init``: ``"random"``,
    ``"crystal"`` or a structure file.
    """

    targets: list[str] = field(default_factory=list)
    density_g_cm3: float | str | list[float] | None = None
    sampling: GenerateConfig = field(default_factory=lambda: GenerateConfig(n_replicas=4))
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    init: str = "random"
    scan_replicas: int = 2
    scan_range: tuple[float, float] | None = None
    surrogate: str | None = None

    def with_settings(self, **settings: Any) -> InvertConfig:
        """A copy with ``settings`` given by field name of this config, its guidance or its sampling."""
        own, guided, sampled = field_names(InvertConfig), field_names(GuidanceConfig), field_names(GenerateConfig)
        unknown = set(settings) - own - guided - sampled
        if unknown:
            raise TypeError(f"invert() got unknown settings {sorted(unknown)}")
        guidance = self.guidance.replace(**{k: v for k, v in settings.items() if k in guided and k not in own})
        sampling = self.sampling.replace(**{k: v for k, v in settings.items() if k in sampled and k not in own})
        return self.replace(**{k: v for k, v in settings.items() if k in own}, guidance=guidance, sampling=sampling)

    @classmethod
    def from_dict(cls, data: dict) -> InvertConfig:
        config = super().from_dict(data)
        sampling = GenerateConfig.from_dict(data["sampling"]) if "sampling" in data else config.sampling
        scan = None if config.scan_range is None else tuple(config.scan_range)
        return config.replace(sampling=sampling, scan_range=scan)


@dataclass
class InversionResult:
    """Structures and everything needed to judge them."""

    structures: list[ase.Atoms]
    targets: list[Target]
    config: dict[str, Any]
    summary: dict[str, Any]
    spectra: dict[str, np.ndarray] = field(default_factory=dict)  # label -> [replicas, n_grid] (fitted a F + b)


def parse_densities(text: str | float | Sequence[float]) -> list[float]:
    """``2.3`` → [2.3]; ``"2.2:2.4:5"`` → five values from 2.2 to 2.4 g/cm³; a list stays a list."""
    if isinstance(text, (int, float)):
        values = [float(text)]
    elif isinstance(text, str):
        parts = text.split(":")
        try:
            if len(parts) == 1:
                values = [float(parts[0])]
            elif len(parts) == 3:
                lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
                if n < 2 or hi <= lo:
                    raise ValueError
                values = np.linspace(lo, hi, n).round(6).tolist()
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"--density {text!r}: give one value (2.3) or a scan LO:HI:N (2.2:2.4:5), in g/cm³"
            ) from None
    else:
        values = [float(v) for v in text]
    if not values or any(not math.isfinite(v) or v <= 0 or v > 30 for v in values):
        raise InputError(f"--density {text!r}: densities must be positive and in g/cm³ (e.g. 2.33 for Si)")
    return values


AUTO_SCAN_STEP = 0.5  # g/cm³ between the densities of --density auto (refine with LO:HI:N)


def auto_densities(prior: str | Path) -> list[float]:
    """``--density auto``: the densities the prior was trained over (a bundled family: all its members' range), every
    ``AUTO_SCAN_STEP`` g/cm³, for a scan that keeps the best fit. A prior trained at one density cannot scan."""
    ranges = []
    members = prior_families().get(str(prior)) if not Path(prior).is_file() else None
    for path in members.values() if members else [resolve_prior(prior)]:
        trained = load_prior(path)[1].get("data", {}).get("density_g_cm3")
        if trained:
            ranges.append((float(trained[0]), float(trained[1])))
    if not ranges:
        raise InputError(f"--density auto: the prior {prior} does not record its training densities; give --density")
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if hi - lo < AUTO_SCAN_STEP:
        raise InputError(f"--density auto: the prior {prior} was trained at {lo:g} g/cm³ only, so it cannot judge "
                         "other densities; give --density (or a scan LO:HI:N near it)")  # fmt: skip
    n = int(round((hi - lo) / AUTO_SCAN_STEP)) + 1
    return np.linspace(lo, hi, n).round(4).tolist()


def _half_cell(species: list[int], n_atoms: int, density: float, cell) -> float:
    masses = atomic_masses[np.asarray(species)]
    if cell is None:
        return cubic_cell_side(n_atoms, float(masses.mean()), density) / 2
    shape = cell_of_volume(cell, volume_at_density(masses.sum(), density))
    return float(perpendicular_widths(torch.as_tensor(shape)[None]).min()) / 2


def _shell_weights(target: Target, scan_range: tuple[float, float] | None) -> Target | None:
    """A copy of a real-space target weighted only beyond its first shell (or over ``scan_range``)."""
    row = SPECS.get(target.kind)
    if row is None or row.treatment != "real":
        return None
    grid = target.observable.grid.numpy()
    weights = target.point_weights.numpy().copy()
    if scan_range is not None:
        mask = (grid >= scan_range[0]) & (grid <= scan_range[1])
    else:
        y = target.y.numpy()
        active = np.flatnonzero(weights > 0)
        peak = active[np.argmax(row.shape(grid[active], y[active]))]
        after = np.arange(peak, len(grid))
        smooth = np.convolve(y, np.ones(5) / 5, mode="same")
        minimum = after[np.argmax(np.diff(smooth[after], append=np.inf) > 0)]
        mask = grid >= grid[minimum]
    weights = weights * mask
    if weights.sum() <= 0:
        return None
    return Target(target.observable, target.y, torch.as_tensor(weights), 1.0, target.fit_scale, target.fit_offset,
                  target.label, target.kind)  # fmt: skip


def crystal_seed(symbol: str, n_atoms: int) -> ase.Atoms:
    """The element's ASE reference crystal (e.g. diamond Si), as an m x m x m cubic supercell of ``n_atoms``."""
    from ase.build import bulk

    try:
        unit = bulk(symbol, cubic=True)
    except Exception as exc:
        raise InputError(f"no reference crystal for {symbol} in ASE ({exc}); give a seed structure file") from None
    m = round((n_atoms / len(unit)) ** (1 / 3))
    if m < 1 or m**3 * len(unit) != n_atoms:
        sizes = ", ".join(str(k**3 * len(unit)) for k in range(1, 6))
        raise InputError(f"a {symbol} crystal seed has {len(unit)} m³ atoms; choose --atoms from {sizes}")
    return unit.repeat((m, m, m))


def with_surrogate(
    targets: Sequence[str | TargetSpec | Target], surrogate: str | Path | None
) -> list[str | TargetSpec | Target]:
    """Targets with ``surrogate`` filled in for ``xanes`` / ``exafs`` specs that name none."""
    parsed = [parse_target_spec(t) if isinstance(t, str) else t for t in targets]
    if surrogate is not None:
        for spec in parsed:
            if isinstance(spec, TargetSpec) and spec.kind in SURROGATE_KINDS:
                spec.options.setdefault("surrogate", str(surrogate))
    return parsed


@dataclass
class _GuidedPass:
    """One guided generation of :func:`invert` (a density-scan point or the final ensemble), with everything it
    needs (the network, the targets on this density's grids), so that it pickles and can run on another machine."""

    network: Any
    meta: dict
    targets: list[Target]
    sampling: GenerateConfig  # at this pass's density, with its number of replicas
    guided: GuidanceConfig
    seed: int
    init: list[ase.Atoms] | None
    checkpoint: SamplerCheckpoint | None
    progress: bool
    scan_range: tuple[float, float] | None = None


def _run_pass(p: _GuidedPass) -> tuple[list[ase.Atoms], dict]:
    """The structures of one pass and what :func:`invert` reports of it."""
    guided = p.guided
    from_scratch = p.init is None
    guidance = SpectralGuidance(p.targets, guided.strength, form=guided.form, step=guided.step,
                                t_guide=guided.t_guide if guided.schedule == "guided" and from_scratch else 1.0,
                                score=p.network)  # fmt: skip
    stages = {}

    def stage(name: str):
        return None if p.checkpoint is None else p.checkpoint.scope(name)

    common = dict(progress=p.progress)
    if from_scratch and guided.schedule == "two-stage":
        first = generate(p.network, p.sampling, seed=p.seed, checkpoint=stage("unconditional"), **common)
        stages["unconditional"] = first.report
        run = generate(p.network, p.sampling, seed=p.seed + 1, init=first.structures, t_start=guided.t_guide,
                       guidance=guidance, checkpoint=stage("guided"), **common)  # fmt: skip
    elif from_scratch:
        run = generate(p.network, p.sampling, seed=p.seed, guidance=guidance, checkpoint=stage("guided"), **common)
    else:
        run = generate(p.network, p.sampling, seed=p.seed, init=p.init, t_start=guided.t_guide, guidance=guidance,
                       checkpoint=stage("guided"), **common)  # fmt: skip
    stages["guided"] = run.report
    meta = p.meta
    return run.structures, {"stages": stages, "sampling": run.config, "loss_history": guidance.history,
                            "prior_file": meta["path"], "chemistry": run.chemistry,
                            "prior_meta": {k: meta[k] for k in PRIOR_META_KEYS if k in meta}}  # fmt: skip


def _scan_point(p: _GuidedPass) -> dict[str, Any]:
    """One density of a scan: its pass, scored by the shell-weighted real-space loss (else the total guidance loss)."""
    structures, _ = _run_pass(p)
    shell = [t for t in (_shell_weights(t, p.scan_range) for t in p.targets) if t is not None]
    scored = shell or p.targets
    positions, cells, numbers, batch = batch_from_atoms(structures)
    with torch.no_grad():
        value = sum(t.weight * t.loss(t.observable(positions.double(), cells.double(), numbers, batch)).mean()
                    for t in scored)  # fmt: skip
    return {"loss": float(value), "scored_by": "shell-weighted real-space loss" if shell else "total guidance loss"}


def invert(
    prior: str | Path,
    targets: Sequence[str | TargetSpec | Target] | None = None,
    config: InvertConfig | None = None,
    *,
    init: str | ase.Atoms | Sequence[ase.Atoms] | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
    checkpoint: SamplerCheckpoint | None = None,
    executor: ExecutorConfig | None = None,
    **settings: Any,
) -> InversionResult:
    """Generate ``n_replicas`` structures of ``n_atoms`` atoms whose spectra match ``targets``.

    ``density_g_cm3``: one density, or several (a list, ``"LO:HI:N"`` or ``"auto"``: :func:`auto_densities`) to scan
    first with ``scan_replicas``
    replicas each; ``strength``/``form``/``step``/``t_guide``: see :class:`SpectralGuidance`; ``init``:
    ``"random"``, ``"crystal"`` (the element's reference crystal, rescaled) or structures (noised to
    ``t_guide``); ``preset``, ``corrector_steps``, restarts, ``composition``, ``bond_cutoffs`` and ``d_min`` as in
    :func:`~specguide.diffusion.sampler.generate` (by default what the prior's training data and its recorded
    recommendation say); ``surrogate``: the checkpoint for ``xanes`` / ``exafs`` targets that do not name one.
    ``notify`` receives, once and before any sampling, what the user should be told about each target (conversions,
    what the cell cannot resolve). ``checkpoint``: a :class:`~specguide.diffusion.sampler.SamplerCheckpoint` that
    saves every stage's progress, so that the same call after an interruption continues where it stopped. The
    same ``seed`` gives the same structures. ``executor``: where the densities of a scan run
    (:class:`~specguide.executors.ExecutorConfig`; default one after another in this process); each density's
    result is the same wherever it runs. A checkpoint folder must then be one that the workers see too.

    The settings are an :class:`InvertConfig` (``config``), with ``settings`` (field names of it, of its
    ``guidance`` or of its ``sampling``, e.g. ``strength=``, ``n_atoms=``) replacing its fields; ``targets``
    replaces its targets (and may hold :class:`~specguide.observables.target.Target` objects), ``init`` its
    start (and may hold structures).
    """
    started = time.perf_counter()
    request = (InvertConfig() if config is None else config).with_settings(**settings)
    if targets is not None:
        request = request.replace(targets=[t if isinstance(t, str) else getattr(t, "label", str(t)) for t in targets])
    else:
        targets = list(request.targets)
    if init is None:
        init = request.init
    elif isinstance(init, str):
        request = request.replace(init=init)
    if isinstance(init, str) and init not in ("random", "crystal"):
        init = read_structures(Path(init))
    asked, guided = request.sampling, request.guidance
    density_g_cm3, scan_replicas, scan_range, surrogate = (
        request.density_g_cm3, request.scan_replicas, request.scan_range, request.surrogate)  # fmt: skip
    n_atoms, n_replicas, steps, seed, preset, cell, composition, cn_range, bond_cutoffs, d_min = (
        asked.n_atoms, asked.n_replicas, asked.steps, asked.seed, asked.preset, asked.cell, asked.composition,
        asked.cn_range, asked.bond_cutoffs, asked.d_min)  # fmt: skip
    if density_g_cm3 is None:
        raise TypeError("invert() needs density_g_cm3 (g/cm³, a scan LO:HI:N or 'auto')")
    if n_replicas < 1 or n_atoms is None or n_atoms < 1:
        raise ValueError("n_replicas and n_atoms must be positive integers")
    if isinstance(density_g_cm3, str) and density_g_cm3.strip().lower() == "auto":
        density_g_cm3 = auto_densities(prior)
    densities = parse_densities(density_g_cm3)
    targets = with_surrogate(targets, surrogate)
    device = resolve_device(asked.device)  # the sampler and the guidance run there; the final scoring on the CPU

    loaded_priors: dict[Path, tuple] = {}

    def prior_at(density: float):
        """The prior network and metadata for ``density`` (a bundled family's nearest member), each file read once."""
        path = resolve_prior(prior, density)
        if path not in loaded_priors:
            loaded_priors[path] = load_prior(path, map_location=device)
        return loaded_priors[path]

    network, middle_meta = prior_at(densities[len(densities) // 2])
    prior_species = list(network.config.species)
    chemistry = prior_chemistry(middle_meta)
    seeds_init: list[ase.Atoms] | None = None
    if isinstance(init, str):
        if init == "crystal":
            symbols = (
                {chemical_symbols[z] for z in prior_species}
                if composition is None
                else set(parse_composition(composition))
            )
            if len(symbols) != 1:
                raise InputError(f"a crystal seed needs one element; the prior/composition has {sorted(symbols)}")
            seeds_init = [crystal_seed(symbols.pop(), n_atoms)]
        elif init != "random":
            raise InputError(f"init={init!r}: use 'random', 'crystal' or give structures")
    else:
        seeds_init = [init] if isinstance(init, ase.Atoms) else list(init)
    species = (
        list(seeds_init[0].numbers)
        if seeds_init is not None
        else numbers_for_composition(composition, n_atoms, prior_species, chemistry)
    )

    symbols = [chemical_symbols[int(z)] for z in species]
    fractions = {s: symbols.count(s) / len(symbols) for s in sorted(set(symbols), key=symbols.index)}

    told: set[tuple[str, str]] = set()

    def targets_for(density: float) -> list[Target]:
        half = _half_cell(species, n_atoms, density, cell)
        atoms_per_a3 = number_density(density, float(atomic_masses[np.asarray(species)].mean()))
        loaded = []
        for item in targets:
            if isinstance(item, Target):
                reach = float(getattr(item.observable, "r_max", 0.0) or 0.0)
                if reach > half + 1e-6:
                    raise InputError(f"{item.label}: its grid needs pairs up to {reach:g} Å, beyond half the cell "
                                     f"({half:.3g} Å); use more atoms or a shorter r_max")  # fmt: skip
                loaded.append(item)
            else:
                spec = item if isinstance(item, TargetSpec) else parse_target_spec(item)
                loaded.append(load_target(spec, half, composition=fractions, number_density=atoms_per_a3))
        labels = [t.label for t in loaded]
        if len(set(labels)) != len(labels):
            for k, target in enumerate(loaded):
                target.label = f"{target.label}#{k + 1}"
        for target in loaded:
            for text in target.metadata.get("notes", []):
                if notify is not None and (target.label, text) not in told:
                    notify(f"{target.label}: {text}")
                told.add((target.label, text))
        return loaded

    def guided_pass(density: float, replicas: int, run_seed: int, quiet: bool = False) -> _GuidedPass:
        network, meta = prior_at(density)
        scope = None if checkpoint is None else checkpoint.scope(f"density{density:g}_seed{run_seed}")
        sampling = asked.replace(density_g_cm3=density, n_replicas=replicas)
        return _GuidedPass(network=network, meta=meta, targets=targets_for(density), sampling=sampling, guided=guided,
                           seed=run_seed, init=seeds_init, checkpoint=scope, progress=progress and not quiet,
                           scan_range=scan_range)  # fmt: skip

    scan = None
    if len(densities) > 1:
        scan = {"densities_g_cm3": densities, "loss": [], "replicas": scan_replicas, "range": scan_range}
        executor = executor or ExecutorConfig()
        passes = [guided_pass(d, scan_replicas, seed + 1000 * (k + 1), executor.distributed)
                  for k, d in enumerate(densities)]  # fmt: skip
        # spawned, not forked: torch's OpenMP threads do not survive a fork
        for point in run_tasks(_scan_point, passes, executor, start_method="spawn"):
            scan["loss"].append(point["loss"])
            scan["scored_by"] = point["scored_by"]
        best = densities[int(np.argmin(scan["loss"]))]
        scan["best_g_cm3"] = best
    else:
        best = densities[0]

    final = guided_pass(best, n_replicas, seed)
    structures, details = _run_pass(final)
    loaded = final.targets
    spectra, losses = {}, {}
    positions, cells, numbers, batch = batch_from_atoms(structures)
    with torch.no_grad():
        for target in loaded:
            raw = target.observable(positions.double(), cells.double(), numbers, batch)
            fitted = target.fitted(raw, realign=True)  # a fitted shift / broadening chosen for the final ensemble
            spectra[target.label] = fitted.numpy()
            per_replica = target.loss(raw)
            ensemble = target.loss(raw.mean(0, keepdim=True))
            losses[target.label] = {
                "per_replica": [round(float(v), 8) for v in per_replica],
                "mean": float(per_replica.mean()),
                "ensemble_mean_spectrum": float(ensemble[0]),
            }
            if target.alignment is not None:
                losses[target.label]["alignment"] = target.alignment.values()
                spectra[f"{target.label} (before alignment)"] = target.scaled(raw).numpy()
    sampling = details["sampling"]
    summary = summarize(structures, bond_cutoffs=bond_cutoffs, cn_range=cn_range, chemistry=details["chemistry"],
                        density_g_cm3=best)  # fmt: skip
    notes = {t.label: t.metadata["notes"] for t in loaded if t.metadata.get("notes")}
    summary.update({"density_g_cm3_used": best, "losses": losses, "density_scan": scan, "target_notes": notes,
                    "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip
    config = {
        "prior": str(prior),
        "prior_file": details["prior_file"],
        "prior_meta": details["prior_meta"],
        "targets": [
            {
                "label": t.label,
                "kind": t.kind,
                "weight": t.weight,
                "fit_scale": t.fit_scale,
                "fit_offset": t.fit_offset,
                **t.metadata,
            }
            for t in loaded
        ],  # fmt: skip
        "density_g_cm3": densities,
        "n_atoms": n_atoms,
        "n_replicas": n_replicas,
        "steps": steps,
        "preset": preset,
        "corrector_steps": sampling["corrector_steps"],
        "seed": seed,
        "guidance": guided.to_dict(),
        "init": init if isinstance(init, str) else f"{len(seeds_init)} structure(s)",
        "cell": None if cell is None else np.asarray(cell, dtype=float).tolist(),
        "composition": sampling["composition"],
        "n_restarts": sampling["n_restarts"],
        "restart_mode": sampling["restart_mode"],
        "t_restart": sampling["t_restart"],
        "cn_range": None if cn_range is None else {chemical_symbols[to_z(k)]: list(v) for k, v in cn_range.items()},
        "cn_reference": sampling.get("cn_reference"),
        "d_min": d_min if isinstance(d_min, (str, float, int)) or d_min is None else str(d_min),
        "scan_replicas": scan_replicas,
        "scan_range": scan_range,
        "sampling": details["sampling"],
        "reports": details["stages"],
        "command": "invert",
        **device_record(device),
        "invert": request.to_dict(),
        "executor": (executor or ExecutorConfig()).to_dict(),
    }
    summary["loss_history"] = [round(v, 6) for v in details["loss_history"]]
    return InversionResult(structures, loaded, config, summary, spectra)


def invert_seeds(
    prior: str | Path,
    targets: Sequence[str | TargetSpec | Target] | None,
    seeds: Sequence[int],
    config: InvertConfig | None = None,
    *,
    executor: ExecutorConfig | None = None,
    init: str | ase.Atoms | Sequence[ase.Atoms] | None = None,
    on_result: Callable[[int, InversionResult], None] | None = None,
    **settings: Any,
) -> list[InversionResult]:
    """One :func:`invert` per seed, the settings otherwise the same, run where ``executor`` says (default: one after
    another in this process): ``results[k]`` is what ``invert(prior, targets, config, seed=seeds[k], ...)`` gives.
    Each run is one task (its density scan, if any, inside it); target and structure files must be readable where
    the tasks run (a shared file system on a cluster). ``on_result(k, result)`` runs in this process as each one
    arrives (in the order they finish), e.g. to write it at once. No progress bars and no notes (see
    :func:`invert`'s)."""
    seeds = check_seeds(seeds)
    request = (InvertConfig() if config is None else config).with_settings(**settings)
    tasks = [(prior, targets, request.with_settings(seed=seed), init) for seed in seeds]
    return run_tasks(_invert_task, tasks, executor, start_method="spawn", on_result=on_result)


def _invert_task(task: tuple) -> InversionResult:
    prior, targets, request, init = task
    return invert(prior, targets, request, init=init, progress=False)


def write_inversion(out_dir: str | Path, result: InversionResult, force: bool = False, plot: bool = True) -> Path:
    """Write the result into ``out_dir`` (refused if it holds files, unless ``force``); returns ``out_dir``."""
    out_dir = Path(out_dir)
    write_results(out_dir, result.structures, result.config, result.summary, force=force)
    for target in result.targets:
        values = result.spectra[target.label]
        grid = target.observable.grid.numpy()
        columns = [grid, target.y.numpy(), values.mean(0), values.std(0), target.point_weights.numpy()]
        names = "data as the cell sees them (the fitted target), ensemble mean, ensemble std, fit weight"
        if target.raw is not None:
            raw_x, raw_y = (np.asarray(v, dtype=float) for v in target.raw)
            inside = (grid >= raw_x.min()) & (grid <= raw_x.max())
            columns.append(np.where(inside, np.interp(grid, raw_x, raw_y), np.nan))
            names += ", data as measured (interpolated; nan outside the data)"
        table = np.column_stack(columns)
        stem = target.label.rsplit(".", 1)[0] if "." in target.label.split(":")[-1] else target.label
        name = "fit_" + "".join(c if c.isalnum() or c in "-" else "_" for c in stem) + ".dat"
        header = (f"{target.observable.quantity}; target {target.label}\n"
                  f"columns: {target.observable.x_label}, {names}")  # fmt: skip
        write_atomically(out_dir / name, lambda tmp, t=table, h=header: np.savetxt(tmp, t, fmt="%.8g", header=h))
    if plot:
        from specguide.plotting import plot_inversion_report

        plot_inversion_report(out_dir / "report.png", result)
    return out_dir
