"""Sampling structures from the prior: Euler–Maruyama on the reverse-time SDE, with restarts and a veto.

Reverse SDE of the variance-exploding schedule (Kwon et al. 2024 Algorithm 1)::

    x <- x + g^2(t) s(x, t) |dt| + g(t) sqrt(|dt|) z,    t <- t - |dt|,    x <- wrap(x)

from ``t_start`` (0.999 from random positions; smaller for partial noising of a given structure) to
``t_min``. Many replicas are integrated together as one batch (PyG ``batch`` vector). On top of it:

- **minimum-distance veto** (GLASS Supplementary): after each step, atoms whose move would bring a pair
  closer than ``d_min`` (and closer than before) keep their old position; repeated until no such pair is left,
  so a configuration without short pairs never acquires one;
- **restart sampling** (Kwon Sec. 4.6): replicas with coordination defects (CN outside an allowed range, bond
  cutoffs per species pair) are re-noised to ``t_restart`` (0.3) — the whole replica, or only the defective
  atoms and their bonded neighbours — and denoised again, for up to ``n_restarts`` cycles; replicas without
  defects are left untouched;
- **failure handling**: a replica whose score or positions become non-finite, or that jumps more than half a
  cell in one step, is re-initialised and sampled again (counted in the report); output is always finite;
- **predictor–corrector** (Song et al. 2021): optionally, each step is followed by Langevin corrector steps
  at the new noise level, with a step size set by a signal-to-noise ratio;
- **guidance hook**: ``guidance(positions, cells, numbers, batch, t, sigma, score) -> extra score`` is added to
  the prior score at every step (see :func:`sample`).

The score can be a :class:`~specguide.models.score.ScoreNetwork` or any callable
``score(positions [N,3], cells [S,3,3], numbers [N], batch [N], t [S]) -> [N,3]`` (Å⁻¹).
Everything random comes from one ``torch.Generator`` on the device of the cells (:mod:`specguide.devices`): the same
seed on the same device gives the same structures.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np
import torch
from ase.data import atomic_masses, chemical_symbols

from specguide.analysis.summary import summarize
from specguide.chemistry import (
    BOND_FACTOR,
    DEFAULT_CN_RANGE,
    VETO_FACTOR,
    Chemistry,
    PairTable,
    PairValues,
    excess_coordination,
    find_defects,
    numbers_for_composition,
    pair_values_json,
    parse_composition,
    to_z,
)
from specguide.config import Config, check_seeds, pairs_from_json, ranges_from_json
from specguide.devices import device_record, reproducible, resolve_device, seeded_generator
from specguide.executors import ExecutorConfig, run_tasks
from specguide.graph import (
    atoms_from_batch,
    list_pairs,
    neighbor_graph,
    perpendicular_widths,
    reset_verlet_lists,
)
from specguide.graph import available_memory as host_available_memory
from specguide.io import InputError, load_checkpoint, write_atomically, write_results
from specguide.models.schedule import T_MAX, T_MIN, VESchedule
from specguide.pretrained import load_prior
from specguide.structure import cell_of_volume, cubic_cell_side, volume_at_density, wrap_positions

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
GuidanceFn = Callable[..., torch.Tensor]
PRIOR_META_KEYS = ("specguide_version", "network", "k", "data")  # what config.json keeps of a prior's metadata


def minimum_distance_veto(
    old: torch.Tensor,
    displacement: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    d_min: PairTable,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the displacement of atoms whose move makes a pair shorter than ``d_min`` (and shorter than before).

    Returns ``(displacement, vetoed mask [N])``. Iterates until no offending pair is left; every round
    freezes at least one more moving atom, so it ends (in practice after 1–3 rounds). A pair that was already
    too short may stay so or separate, but never approach.
    """
    cutoff = d_min.max_for(numbers)
    vetoed = torch.zeros(old.shape[0], dtype=torch.bool, device=old.device)
    if cutoff <= 0:
        return displacement, vetoed
    displacement = displacement.clone()
    # a pair closes by at most the two largest moves: the pairs of the old positions within cutoff + reach hold every
    # pair that any round can find closer than the cut-off, so one list serves all rounds (where it stays small)
    lengths = displacement.norm(dim=-1)
    reach = float(lengths.topk(min(2, len(lengths))).values.sum()) if len(lengths) else 0.0
    if math.isfinite(reach) and reach <= cutoff:
        pairs = list_pairs(old, cells, batch, cutoff + reach, full_list=False)
        i, j = pairs.edge_index
        before = pairs.vectors(old, cells)[1]
        threshold = d_min.lookup(numbers[i], numbers[j], before.dtype)
        while True:
            after = pairs.vectors(old + displacement, cells)[1]
            offending = (after < threshold) & (after < before)
            if not bool(offending.any()):
                return displacement, vetoed
            atoms = torch.cat([i[offending], j[offending]])
            displacement[atoms] = 0.0
            vetoed[atoms] = True
    while True:
        new = old + displacement
        graph = neighbor_graph(new, cells, batch, cutoff, full_list=False)
        if graph.distances.numel() == 0:
            break
        i, j = graph.edge_index
        before = (graph.vectors - (displacement[j] - displacement[i])).norm(dim=-1)
        threshold = d_min.lookup(numbers[i], numbers[j], graph.distances.dtype)
        offending = (graph.distances < threshold) & (graph.distances < before)
        if not bool(offending.any()):
            break
        atoms = torch.cat([i[offending], j[offending]])
        displacement[atoms] = 0.0
        vetoed[atoms] = True
    return displacement, vetoed


class VetoSchedule:
    """Closest approach per species pair that tightens as the noise vanishes (Å).

    ``d(σ) = max(floor, final − width · σ)``: at noise level σ (Å) a move is vetoed only if it brings a pair
    closer than a structure whose clean positions obey ``final`` could come by noise alone (``width`` = 3√2: three
    standard deviations of the noise on a pair distance), and never closer than ``floor``; from ``strict_below``
    (Å of noise) down the veto is ``final`` itself (e.g. the shortest pairs of the prior's training data). A
    fixed veto at ``final`` from the start freezes moves at high noise and costs the sampler structure quality.
    """

    def __init__(
        self, final: PairValues, floor: PairValues, width: float = 3.0 * math.sqrt(2.0), strict_below: float = 0.08
    ):
        self.given = {"final": final, "floor": floor, "width": float(width), "strict_below": float(strict_below)}
        self.final, self.floor, self.width = PairTable(final).table, PairTable(floor).table, float(width)
        self.strict_below = float(strict_below)
        self._cache: dict[float, PairTable] = {}

    def to_dict(self) -> dict:
        """JSON form: ``{"final": {"O-Si": Å}, "floor": {...}, "width": 4.24}``."""
        return {k: _jsonable_pairs(v) for k, v in self.given.items()}

    def at(self, sigma: float) -> PairTable:
        key = 0.0 if float(sigma) <= self.strict_below else round(float(sigma), 4)
        if key not in self._cache:
            table = PairTable(0.0)
            table.table = torch.maximum(self.floor, self.final - self.width * key).clamp(min=0.0)
            self._cache[key] = table
        return self._cache[key]


def _veto_at(veto: PairTable | VetoSchedule | None, sigma: float) -> PairTable | None:
    return veto.at(sigma) if isinstance(veto, VetoSchedule) else veto


# --------------------------------------------------------------------------------------------------
# options and results
# --------------------------------------------------------------------------------------------------


@dataclass
class RestartOptions:
    """Restart sampling: re-noise replicas with coordination defects to ``t_restart`` and denoise again.

    Defects are atoms whose coordination number is outside ``cn_range[species]`` and, with ``cn_reference``
    (``{"Si": {"4": 0.95, ...}}``, the training data's coordination fractions), atoms in the coordination classes
    the ensemble holds more often than the reference (:func:`~specguide.chemistry.excess_coordination`): classes
    the reference never shows are always re-sampled, the others until their share has come down to it.
    """

    n_restarts: int = 0
    t_restart: float = 0.3
    bond_cutoffs: PairValues = 1.84
    cn_range: dict | None = field(default_factory=lambda: dict(DEFAULT_CN_RANGE))
    mode: str = "replica"  # "replica": re-noise the whole replica (paper); "local": defects + bonded neighbours
    steps: int | None = None  # default: the main pass's step size over (t_min, t_restart)
    # local mode only: after the last cycle, every atom of the restarted replicas is re-noised to t_relax and
    # denoised together, so the seams between re-sampled and frozen atoms relax (None: no joint pass)
    t_relax: float | None = 0.1
    cn_reference: dict | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("replica", "local"):
            raise ValueError(f"restart mode must be 'replica' or 'local', got {self.mode!r}")
        if self.n_restarts < 0:
            raise ValueError("n_restarts must be >= 0")
        if self.t_relax is not None and not 0 < self.t_relax <= 1.0:
            raise ValueError(f"t_relax must be in (0, 1] or None, got {self.t_relax}")
        if not self.cn_range and not self.cn_reference:
            raise ValueError("restarts need a cn_range {species: (lo, hi)} or a cn_reference of fractions")


@dataclass
class SampleReport:
    """What happened during sampling, per replica where it applies."""

    n_reinitialised: list[int]  # re-initialisations after non-finite / exploding steps
    n_restart_cycles: list[int]  # restart cycles each replica went through
    defects_per_cycle: list[list[int]] = field(default_factory=list)  # [cycle][replica] defect counts
    failed_restarts: int = 0  # restart passes that blew up and were reverted
    vetoed_moves: int = 0  # atom moves rejected by the minimum-distance veto
    score_evaluations: int = 0  # network calls (each on a batch of replicas)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SampleResult:
    positions: torch.Tensor
    cells: torch.Tensor
    numbers: torch.Tensor
    batch: torch.Tensor
    report: SampleReport

    def to_atoms(self) -> list[ase.Atoms]:
        return atoms_from_batch(self.positions, self.cells, self.numbers, self.batch)


def _sub_batch(selected: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Atom mask and re-indexed batch vector of the replicas in the boolean mask ``selected [S]``."""
    atom_mask = selected[batch]
    remap = torch.cumsum(selected.long(), 0) - 1
    return atom_mask, remap[batch[atom_mask]]


def _accepts_replica_ids(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "replica_ids" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class _Progress:
    def __init__(self, enabled: bool):
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            )
            self.progress.start()
        self.task = None
        self.label = ""

    def new(self, description: str, total: int) -> None:
        self.label = description
        if self.progress is not None:
            self.task = self.progress.add_task(description, total=total)

    def advance(self, status: str = "") -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
            if status:
                self.progress.update(self.task, description=f"{self.label} ({status})")

    def finish(self) -> None:
        """End the current task where it stands (a task that may stop before its total)."""
        if self.progress is not None and self.task is not None:
            done = next(task.completed for task in self.progress.tasks if task.id == self.task)
            self.progress.update(self.task, total=done, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


RANDOM_START_ATTEMPTS = 200  # rounds of redrawing atoms in too-short pairs of a random start (best effort)
CHECKPOINT_EVERY = 32  # steps between the sampler's fixed points (neighbour lists rebuilt; progress saved if asked)


class SamplerCheckpoint:
    """The sampler's progress in a folder, so that an interrupted run continues exactly where it stopped.

    Every pass of the sampler (the main denoising pass, each re-initialisation, restart cycle and joint pass) is one
    numbered *call*. Within a call the state (positions, failure flags, step, random generator) is saved every
    :data:`CHECKPOINT_EVERY` steps; when the call ends its result is saved. A run given the same folder again skips
    the calls that ended, restores the last saved step of the one that did not, and continues: the same seed gives
    the same structures as an uninterrupted run (the neighbour lists are rebuilt at those steps in every run, see
    :func:`specguide.graph.reset_verlet_lists`). Files hold tensors and plain numbers only (read back with
    ``weights_only=True``). ``scope(name)`` gives a sub-folder for one stage of a multi-stage run.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def scope(self, name: str) -> SamplerCheckpoint:
        return SamplerCheckpoint(self.folder / name)

    def _path(self, call: int, partial: bool) -> Path:
        return self.folder / f"call{call:03d}{'.partial' if partial else ''}.pt"

    def load(self, call: int, partial: bool) -> dict | None:
        path = self._path(call, partial)
        if not path.is_file():
            return None
        return load_checkpoint(path, "sampler checkpoint", "remove the folder and start again without --resume")

    def save(self, call: int, partial: bool, state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self._path(call, partial), lambda tmp: torch.save(state, tmp))
        if not partial:
            self._path(call, True).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# the sampler
# --------------------------------------------------------------------------------------------------


class _Sampler:
    def __init__(
        self,
        score: ScoreFn,
        schedule: VESchedule,
        generator: torch.Generator,
        veto: PairTable | VetoSchedule | None,
        guidance: GuidanceFn | None,
        max_displacement: float | None,
        progress: _Progress,
        report: SampleReport,
        corrector_steps: int = 0,
        snr: float = 0.16,
        checkpoint: SamplerCheckpoint | None = None,
    ):
        self.score, self.schedule, self.generator = score, schedule, generator
        self.checkpoint = checkpoint
        self.calls = 0  # passes integrated so far (their number names their checkpoint)
        self.corrector_steps, self.snr = int(corrector_steps), float(snr)
        self.veto, self.guidance, self.progress, self.report = veto, guidance, progress, report
        self.max_displacement = max_displacement
        self.guidance_wants_ids = guidance is not None and _accepts_replica_ids(guidance)
        self.score_wants_ids = not isinstance(score, torch.nn.Module) and _accepts_replica_ids(score)

    def full_score(self, x, cells, numbers, batch, t_batch, replica_ids) -> torch.Tensor:
        """Prior score plus guidance at ``(x, t)`` (Å⁻¹, ``[N, 3]``)."""
        extra_score = {"replica_ids": replica_ids} if self.score_wants_ids else {}
        score = self.score(x, cells, numbers, batch, t_batch, **extra_score).to(x.dtype)
        self.report.score_evaluations += 1
        if self.guidance is not None:
            sigma = self.schedule.sigma(t_batch)
            extra = {"replica_ids": replica_ids} if self.guidance_wants_ids else {}
            with torch.enable_grad():
                added = self.guidance(x.detach(), cells, numbers, batch, t_batch, sigma, score.detach(), **extra)
            score = score + added.detach().to(x.dtype)
        return score

    def move(self, x, drift, noise, cells, numbers, batch, limit, failed, mobile, sigma: float = 0.0):
        """Apply ``drift + noise`` (Å): freeze immobile atoms, flag exploding replicas, veto (at the noise level
        ``sigma`` reached, Å), wrap."""
        displacement = drift + noise
        if mobile is not None:
            displacement = displacement * mobile[:, None].to(x.dtype)
            drift = drift * mobile[:, None].to(x.dtype)
        bad_atom = ~torch.isfinite(displacement).all(dim=-1) | (drift.norm(dim=-1) > limit)
        failed |= torch.zeros_like(failed, dtype=torch.long).index_add(0, batch, bad_atom.long()) > 0
        displacement = torch.where(failed[batch][:, None], torch.zeros_like(displacement), displacement)
        if self.veto is not None:
            table = _veto_at(self.veto, sigma)
            displacement, vetoed = minimum_distance_veto(x, displacement, cells, numbers, batch, table)
            self.report.vetoed_moves += int(vetoed.sum())
        return wrap_positions(x + displacement, cells, batch), failed

    def integrate(
        self,
        x: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor,
        t_grid: torch.Tensor,
        replica_ids: torch.Tensor,
        mobile: torch.Tensor | None = None,
        call: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the reverse SDE over ``t_grid`` (descending); returns ``(x, failed [S])``.

        Each Euler–Maruyama (predictor) step is followed by ``corrector_steps`` Langevin (corrector) steps at
        the new noise level, ``x <- x + eps s + sqrt(2 eps) z`` with the per-replica step
        ``eps = 2 (snr |z| / |s|)^2`` (Song et al. 2021, Algorithm 4).
        """
        n_structures = cells.shape[0]
        failed = torch.zeros(n_structures, dtype=torch.bool, device=x.device)
        if self.max_displacement is None:
            limit = 0.5 * perpendicular_widths(cells).min(dim=-1).values
        else:
            limit = torch.full((n_structures,), float(self.max_displacement), dtype=x.dtype, device=x.device)
        limit = limit.to(x.dtype).index_select(0, batch)
        geometry = (cells, numbers, batch)
        first = 0
        saved = self.checkpoint.load(call, partial=True) if self.checkpoint is not None else None
        if saved is not None:
            x, failed, first = saved["x"].to(x), saved["failed"].to(x.device), int(saved["step"])
            self.generator.set_state(saved["generator"])
            for _ in range(first):
                self.progress.advance()
        for k in range(first, len(t_grid) - 1):
            if k % CHECKPOINT_EVERY == 0:  # a fixed point of every run: fresh neighbour lists, progress saved
                reset_verlet_lists()
                if self.checkpoint is not None and (k > first or saved is None):
                    state = {"x": x, "failed": failed, "step": k, "generator": self.generator.get_state()}
                    self.checkpoint.save(call, partial=True, state=state)
            t, dt = float(t_grid[k]), float(t_grid[k] - t_grid[k + 1])
            t_batch = torch.full((n_structures,), t, dtype=x.dtype, device=x.device)
            score = self.full_score(x, *geometry, t_batch, replica_ids)
            g2 = self.schedule.g2(t)
            z = torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
            sigma_next = float(self.schedule.sigma(torch.tensor(float(t_grid[k + 1]))))
            x, failed = self.move(
                x, g2 * score * dt, math.sqrt(g2 * dt) * z, *geometry, limit, failed, mobile, sigma_next
            )
            t_next = torch.full((n_structures,), float(t_grid[k + 1]), dtype=x.dtype, device=x.device)
            for _ in range(self.corrector_steps):
                score = self.full_score(x, *geometry, t_next, replica_ids)
                z = torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
                z_norm = x.new_zeros(n_structures).index_add(0, batch, z.pow(2).sum(-1)).sqrt()
                s_norm = x.new_zeros(n_structures).index_add(0, batch, score.pow(2).sum(-1)).sqrt()
                eps = (2.0 * (self.snr * z_norm / s_norm.clamp(min=1e-12)) ** 2).index_select(0, batch)[:, None]
                x, failed = self.move(
                    x, eps * score, torch.sqrt(2.0 * eps) * z, *geometry, limit, failed, mobile, sigma_next
                )
            self.progress.advance(self.guidance.status() if hasattr(self.guidance, "status") else "")
        return x, failed


def random_positions(
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    generator: torch.Generator,
    d_min: PairTable | None = None,
    attempts: int = 200,
    report: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Uniform random positions in each cell; with ``d_min``, atoms in too-short pairs are redrawn (best effort).
    ``report(n)`` is called after each round of redrawing with the number of atoms redrawn."""
    dtype = cells.dtype

    def draw(n: int, index: torch.Tensor) -> torch.Tensor:
        fractional = torch.rand(n, 3, generator=generator, dtype=dtype, device=cells.device)
        return torch.einsum("ni,nij->nj", fractional, cells.index_select(0, index))

    x = draw(len(batch), batch)
    if d_min is None or d_min.max_for(numbers) <= 0:
        return x
    cutoff = d_min.max_for(numbers)
    for _ in range(attempts):
        graph = neighbor_graph(x, cells, batch, cutoff, full_list=False)
        i, j = graph.edge_index
        short = graph.distances < d_min.lookup(numbers[i], numbers[j], dtype)
        if not bool(short.any()):
            break
        redo = torch.unique(j[short])
        x[redo] = draw(len(redo), batch[redo])
        if report is not None:
            report(len(redo))
    return x


def sample(
    score: ScoreFn,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    schedule: VESchedule | None = None,
    steps: int = 256,
    t_start: float = T_MAX,
    t_min: float = T_MIN,
    generator: torch.Generator | int | None = 0,
    restart: RestartOptions | None = None,
    d_min: PairValues | None = None,
    guidance: GuidanceFn | None = None,
    max_reinit: int = 3,
    max_displacement: float | None = None,
    corrector_steps: int = 0,
    snr: float = 0.16,
    progress: bool = False,
    checkpoint: SamplerCheckpoint | None = None,
) -> SampleResult:
    """Sample a batch of replicas with the reverse-time SDE (Euler–Maruyama, ``steps`` steps).

    ``cells [S,3,3]``, ``numbers [N]``, ``batch [N]`` fix the replicas. With ``positions=None`` the atoms start
    uniformly at random (away from each other by ``d_min`` where possible); otherwise ``positions [N,3]`` are
    clean seed structures (a crystal rescaled to the density, a liquid snapshot) noised to ``t_start``
    (``x = x0 + sigma(t_start) eps``) before denoising. ``schedule`` defaults to the network's own.

    ``guidance(positions, cells, numbers, batch, t [S], sigma [S], score [N,3]) -> [N,3]``: an extra score term
    (Å⁻¹) added to the prior score at every step. It is called under ``torch.enable_grad()`` with detached
    tensors, so it may differentiate an observable (or the score network itself, e.g. through an ``x0``
    estimate ``x + sigma^2 score``); ``batch`` indexes the replicas of *this call*, which during restarts is a
    subset: a guidance that accepts a keyword ``replica_ids`` (or ``**kwargs``) receives the original replica
    index of each structure ``[S]``.

    ``corrector_steps`` Langevin corrector steps (signal-to-noise ratio ``snr``) follow every predictor step
    (predictor–corrector sampling; each costs one more score evaluation).

    ``restart`` enables restart sampling (see :class:`RestartOptions`); ``d_min`` (Å, one value or per pair)
    enables the minimum-distance veto. A replica whose step is non-finite or whose drift ``g^2 s dt`` is longer
    than ``max_displacement`` (default half the cell width) is re-initialised, at most ``max_reinit`` times.

    Restarts and re-initialisations integrate only the replicas concerned, so ``score`` and ``guidance`` may
    see a subset of the batch; a plain-callable ``score`` that accepts a keyword ``replica_ids`` (or
    ``**kwargs``) gets the original index of each of its structures, as ``guidance`` does.
    """
    start_time = time.perf_counter()
    if isinstance(generator, int) or generator is None:
        generator = seeded_generator(0 if generator is None else int(generator), cells.device)
    if generator.device.type != cells.device.type:
        raise ValueError(f"the generator is on {generator.device}, the structures on {cells.device}: give one on the "
                         "device they are on (specguide.devices.seeded_generator)")  # fmt: skip
    if schedule is None:
        schedule = getattr(score, "schedule", None) or VESchedule()
    if not 0 < t_min < t_start <= 1.0:
        raise ValueError(f"need 0 < t_min < t_start <= 1, got t_min={t_min}, t_start={t_start}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if corrector_steps < 0 or not snr > 0:
        raise ValueError(f"need corrector_steps >= 0 and snr > 0, got {corrector_steps} and {snr}")
    dtype = cells.dtype if cells.dtype.is_floating_point else torch.float32
    cells = cells.to(dtype)
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    device = cells.device
    numbers = numbers.long().to(device)
    batch = batch.long().to(device)
    n_structures = cells.shape[0]
    veto = d_min if isinstance(d_min, VetoSchedule) else (PairTable(d_min) if d_min is not None else None)
    report = SampleReport(n_reinitialised=[0] * n_structures, n_restart_cycles=[0] * n_structures)
    bar = _Progress(progress)
    sampler = _Sampler(score, schedule, generator, veto, guidance, max_displacement, bar, report, corrector_steps, snr,
                       checkpoint)  # fmt: skip
    seeds = None if positions is None else positions.to(dtype=dtype, device=device)

    sigma_start = float(schedule.sigma(torch.tensor(float(t_start))))

    def initialise(selected: torch.Tensor) -> torch.Tensor:
        atom_mask, sub_batch = _sub_batch(selected, batch)
        sub_cells = cells[selected]
        if seeds is None:
            bar.new("random start: redrawing atoms in too-short pairs", total=RANDOM_START_ATTEMPTS)
            x = random_positions(sub_cells, numbers[atom_mask], sub_batch, generator, _veto_at(veto, sigma_start),
                                 RANDOM_START_ATTEMPTS, lambda n: bar.advance(f"{n:,} atoms redrawn"))  # fmt: skip
            bar.finish()
            return x
        start = seeds[atom_mask]
        noise = sigma_start * torch.randn(start.shape, generator=generator, dtype=dtype, device=start.device)
        if veto is not None:
            table = _veto_at(veto, sigma_start)
            noise, _ = minimum_distance_veto(start, noise, sub_cells, numbers[atom_mask], sub_batch, table)
        return wrap_positions(start + noise, sub_cells, sub_batch)

    def run(selected: torch.Tensor, x: torch.Tensor, t_grid: torch.Tensor, mobile=None):
        atom_mask, sub_batch = _sub_batch(selected, batch)
        ids = torch.nonzero(selected).flatten()
        call = sampler.calls
        sampler.calls += 1
        done = checkpoint.load(call, partial=False) if checkpoint is not None else None
        if done is not None:  # this pass ended before an interruption: its result and the generator after it
            x_sub, failed = done["x"].to(x), done["failed"].to(x.device)
            generator.set_state(done["generator"])
            for _ in range(len(t_grid) - 1):
                bar.advance()
        else:
            x_sub, failed = sampler.integrate(
                x[atom_mask], cells[selected], numbers[atom_mask], sub_batch, t_grid, ids,
                None if mobile is None else mobile[atom_mask], call,
            )  # fmt: skip
            if checkpoint is not None:
                checkpoint.save(call, partial=False, state={"x": x_sub, "failed": failed,
                                                            "generator": generator.get_state()})  # fmt: skip
        x = x.clone()
        x[atom_mask] = x_sub
        out = torch.zeros(n_structures, dtype=torch.bool, device=device)
        out[ids[failed]] = True
        return x, out

    try:
        everyone = torch.ones(n_structures, dtype=torch.bool, device=device)
        main_grid = torch.linspace(t_start, t_min, steps + 1, dtype=torch.float64)
        x = torch.zeros(len(numbers), 3, dtype=dtype, device=device)
        x[everyone[batch]] = initialise(everyone)
        bar.new("denoising", steps)
        x, failed = run(everyone, x, main_grid)
        while bool(failed.any()):
            for s in torch.nonzero(failed).flatten().tolist():
                report.n_reinitialised[s] += 1
                if report.n_reinitialised[s] > max_reinit:
                    raise RuntimeError(
                        f"replica {s} failed (non-finite or exploding score) {max_reinit + 1} times; "
                        "check the prior and the density; when guided, take more steps (smaller moves per step, "
                        "e.g. --steps 64 or more) or a smaller guidance strength (--strength)"
                    )
            warnings.warn(
                f"re-initialising {int(failed.sum())} replica(s) after non-finite or exploding steps", stacklevel=2
            )
            x[failed[batch]] = initialise(failed)
            bar.new("re-initialised", steps)
            x, failed = run(failed, x, main_grid)

        if restart is not None and restart.n_restarts > 0:
            x = _restart_cycles(x, cells, numbers, batch, schedule, restart, t_min, steps, t_start, run, bar, report,
                                generator, veto)  # fmt: skip
    finally:
        bar.close()
    if not bool(torch.isfinite(x).all()):  # pragma: no cover - guarded above; never hand out NaN
        raise RuntimeError("sampling produced non-finite positions")
    report.seconds = round(time.perf_counter() - start_time, 3)
    return SampleResult(x, cells, numbers, batch, report)


def _in_short_pairs(x, cells, numbers, batch, table: PairTable) -> torch.Tensor:
    """Boolean mask ``[N]`` of atoms in a pair closer than ``table`` allows."""
    cutoff = table.max_for(numbers)
    short = torch.zeros(len(numbers), dtype=torch.bool, device=x.device)
    if cutoff <= 0:
        return short
    graph = neighbor_graph(x, cells, batch, cutoff, full_list=False)
    i, j = graph.edge_index
    close = graph.distances < table.lookup(numbers[i], numbers[j], graph.distances.dtype)
    short[i[close]] = True
    short[j[close]] = True
    return short


def _restart_cycles(
    x, cells, numbers, batch, schedule, restart, t_min, steps, t_start, run, bar, report, generator, veto
):
    bonds_table = PairTable(restart.bond_cutoffs)
    n_structures = cells.shape[0]
    if not t_min < restart.t_restart <= 1.0:
        raise ValueError(f"t_restart must be in (t_min, 1], got {restart.t_restart}")

    def grid_from(t_high: float, n_steps: int | None = None) -> torch.Tensor:
        """Time grid from ``t_high`` down to ``t_min`` at the main pass's step size (or ``n_steps`` steps)."""
        n_steps = n_steps or max(1, math.ceil(steps * (t_high - t_min) / (t_start - t_min)))
        return torch.linspace(t_high, t_min, n_steps + 1, dtype=torch.float64)

    grid = grid_from(restart.t_restart, restart.steps)
    renoise = schedule.renoise_sigma(t_min, restart.t_restart)

    def renoise_and_run(x, selected, mobile, sigma, t_grid, label):
        """Re-noise the ``mobile`` atoms of the ``selected`` replicas by ``sigma`` (Å) and denoise over ``t_grid``."""
        before = x.clone()
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        atom_mask, sub_batch = _sub_batch(selected, batch)
        kick = (sigma * noise * mobile[:, None].to(x.dtype))[atom_mask]
        if veto is not None:  # re-noising must not create short pairs either
            table = _veto_at(veto, float(sigma))
            kick, _ = minimum_distance_veto(x[atom_mask], kick, cells[selected], numbers[atom_mask], sub_batch, table)
        x = x.clone()
        x[atom_mask] = wrap_positions(x[atom_mask] + kick, cells[selected], sub_batch)
        bar.new(label, len(t_grid) - 1)
        x, failed = run(selected, x, t_grid, None if bool(mobile[selected[batch]].all()) else mobile)
        if bool(failed.any()):  # a pass that blows up is undone: the replica keeps its previous sample
            report.failed_restarts += int(failed.sum())
            x[failed[batch]] = before[failed[batch]]
        return x

    restarted = torch.zeros(n_structures, dtype=torch.bool, device=x.device)
    for _cycle in range(restart.n_restarts + 1):
        defects, bonds, cn = find_defects(x, cells, numbers, batch, bonds_table, restart.cn_range,
                                          return_bonds=True, return_cn=True)  # fmt: skip
        if restart.cn_reference:
            defects = defects | excess_coordination(cn, numbers, restart.cn_reference)
        if isinstance(veto, VetoSchedule):  # atoms in pairs closer than the final veto are defects too
            defects = defects | _in_short_pairs(x, cells, numbers, batch, veto.at(0.0))
        per_replica = torch.zeros(n_structures, dtype=torch.long, device=x.device).index_add(0, batch, defects.long())
        report.defects_per_cycle.append(per_replica.tolist())
        selected = per_replica > 0
        if _cycle == restart.n_restarts or not bool(selected.any()):
            break
        if restart.mode == "replica":
            mobile = selected[batch]
        else:  # defective atoms and their bonded neighbours
            mobile = defects.clone()
            i, j = bonds
            mobile[j[defects[i]]] = True
        x = renoise_and_run(x, selected, mobile, renoise, grid, f"restart {_cycle + 1}")
        restarted |= selected
        for s in torch.nonzero(selected).flatten().tolist():
            report.n_restart_cycles[s] += 1
    if restart.mode == "local" and restart.t_relax is not None and restart.t_relax > t_min and bool(restarted.any()):
        # local restarts freeze the atoms around each defect; a last short pass moves all atoms together
        sigma = schedule.renoise_sigma(t_min, restart.t_relax)
        everyone = torch.ones_like(batch, dtype=torch.bool)
        x = renoise_and_run(x, restarted, everyone, sigma, grid_from(restart.t_relax), "joint relax")
    return x


# --------------------------------------------------------------------------------------------------
# the one-call API
# --------------------------------------------------------------------------------------------------


def _seed_structures(init: Sequence[ase.Atoms], n_replicas: int, n_atoms: int | None) -> list[ase.Atoms]:
    seeds = []
    for r in range(n_replicas):
        atoms = init[r % len(init)].copy()
        if n_atoms is not None and len(atoms) != n_atoms:
            ratio = n_atoms / len(atoms)
            m = round(ratio ** (1 / 3))
            if n_atoms % len(atoms) or m**3 * len(atoms) != n_atoms:
                raise ValueError(
                    f"initial structure has {len(atoms)} atoms; n_atoms={n_atoms} is not it times a cube "
                    "(m x m x m supercell)"
                )
            atoms = atoms.repeat((m, m, m))
        seeds.append(atoms)
    return seeds


DENSITY_REACH = (0.5, 1.5)  # a prior is refused below half its lowest and above 1.5 x its highest training density
# bytes per graph edge and feature alive at once while sampling, set above the measured peak resident memory with the
# network run in edge chunks (models.score.EDGE_CHUNK; a-Si, 64 features, 15.5 edges per atom, g(r)-guided invert at
# 100,000 atoms: 19.9 KB per atom, against 24.4 KB estimated with this figure; bench/results/scale.log)
BYTES_PER_EDGE_FEATURE = 20


def available_memory(device: torch.device | None = None) -> int:
    """Bytes this process may still allocate: on a GPU its free memory, else what the host has available
    (:func:`specguide.graph.available_memory`)."""
    if device is not None and device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return host_available_memory()


def check_request(
    score_fn, meta: dict, density_g_cm3: float, masses: Sequence[float], n_replicas: int, cell, device=None
) -> None:
    """Refuse, before any work, what a prior cannot represent or this machine cannot hold (``InputError`` with the
    range or the estimate): densities far outside the prior's training range, cells narrower than the network's
    reach, and runs whose estimated memory exceeds what is available."""
    if not math.isfinite(density_g_cm3) or density_g_cm3 <= 0:
        raise InputError(f"--density {density_g_cm3}: give a positive density in g/cm³")
    trained = meta.get("data", {}).get("density_g_cm3")
    if trained:
        lo, hi = DENSITY_REACH[0] * trained[0], DENSITY_REACH[1] * trained[1]
        if not lo <= density_g_cm3 <= hi:
            raise InputError(
                f"--density {density_g_cm3} g/cm³ is far outside what this prior was trained on "
                f"({trained[0]:.3g}–{trained[1]:.3g} g/cm³); it can represent {lo:.3g}–{hi:.3g} g/cm³"
            )
        if not trained[0] - 0.25 <= density_g_cm3 <= trained[1] + 0.25:
            message = (f"density {density_g_cm3} g/cm³ is outside the prior's training range "
                       f"{trained[0]:.3g}–{trained[1]:.3g} g/cm³")  # fmt: skip
            warnings.warn(message, stacklevel=3)
    config = getattr(score_fn, "config", None)
    n_atoms = len(masses)
    volume = volume_at_density(float(np.sum(masses)), density_g_cm3)
    if config is not None and cell is None:
        side = volume ** (1 / 3)
        reach = float(config.cutoff)
        if side < reach:
            need = math.ceil(n_atoms * (reach / side) ** 3)
            raise InputError(f"--atoms {n_atoms}: the cell would be {side:.2f} Å wide, narrower than the prior's "
                             f"{reach:g} Å reach; use at least {need} atoms")  # fmt: skip
    hidden = int(getattr(config, "hidden", 64) or 64)
    reach = float(getattr(config, "cutoff", 5.0) or 5.0)
    edges = n_atoms / volume * 4.0 / 3.0 * math.pi * reach**3  # neighbours per atom within the graph cutoff
    estimate = n_replicas * n_atoms * (edges * hidden * BYTES_PER_EDGE_FEATURE + 40 * hidden + 2000)
    free = available_memory(device)
    if estimate > 0.8 * free:
        where = "on " + str(device) if device is not None and device.type == "cuda" else "in memory"
        fits = int(n_atoms * 0.8 * free / estimate)  # the estimate grows as the atoms at a fixed density
        raise InputError(f"{n_replicas} × {n_atoms:,} atoms need about {estimate / 2**30:.1f} GiB; "
                         f"{free / 2**30:.1f} GiB are available {where}: use fewer atoms or replicas (at most about "
                         f"{fits:,} atoms in all)")  # fmt: skip


PRESETS = ("quality", "fast")
FAST_PRESET = {"corrector_steps": 0, "n_restarts": 0, "restart_mode": "replica", "t_restart": 0.3}
# what a prior without its own recommendation gets under "quality" (bundled priors record theirs: MODELCARD.md)
QUALITY_PRESET = {"corrector_steps": 4, "n_restarts": 6, "restart_mode": "local", "t_restart": 0.3}


def preset_settings(preset: str, meta: dict | None = None) -> dict[str, Any]:
    """Sampler settings of a preset: ``fast`` (plain Euler–Maruyama, no restarts) or ``quality`` (the prior's
    recorded recommendation ``meta["sampling"]["quality"]``, else :data:`QUALITY_PRESET`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if preset == "fast":
        return dict(FAST_PRESET)
    return {**QUALITY_PRESET, **((meta or {}).get("sampling", {}).get("quality", {}))}


def prior_chemistry(meta: dict | None) -> Chemistry | None:
    """The :class:`~specguide.chemistry.Chemistry` a prior's checkpoint records, if any."""
    data = (meta or {}).get("chemistry")
    return Chemistry.from_dict(data) if data else None


@dataclass
class GenerateConfig(Config):
    """What :func:`generate` is asked for (``config.json``'s ``"generate"``; see :func:`generate` for each setting).

    ``density_g_cm3`` (g/cm³) and ``n_atoms`` (or seed structures) are needed; ``None`` elsewhere means the
    preset's or the prior's own value. ``cell``, ``composition``, ``bond_cutoffs``, ``cn_range`` and ``d_min``
    take the forms :func:`generate` documents; their JSON forms are read back by :meth:`from_dict`.
    """

    density_g_cm3: float | None = None
    n_atoms: int | None = None
    n_replicas: int = 1
    steps: int = 256
    seed: int = 0
    preset: str = "quality"
    corrector_steps: int | None = None
    snr: float = 0.16
    cell: Any = None
    composition: dict[str, float] | str | None = None
    t_start: float | None = None
    t_min: float = T_MIN
    n_restarts: int | None = None
    t_restart: float | None = None
    restart_mode: str | None = None
    bond_cutoffs: PairValues | None = None
    cn_range: dict | None = None
    d_min: Any = "auto"
    max_reinit: int = 3
    device: str = "auto"  # auto | cpu | cuda | cuda:K (specguide.devices.resolve_device); config.json: the one used

    @classmethod
    def from_dict(cls, data: dict) -> GenerateConfig:
        config = super().from_dict(data)
        d_min = config.d_min
        if isinstance(d_min, dict) and "final" in d_min:  # a VetoSchedule as to_dict() wrote it
            d_min = VetoSchedule(**{k: pairs_from_json(v) for k, v in d_min.items()})
        bond_cutoffs, cn_range = pairs_from_json(config.bond_cutoffs), ranges_from_json(config.cn_range)
        return config.replace(bond_cutoffs=bond_cutoffs, cn_range=cn_range, d_min=pairs_from_json(d_min))


@dataclass
class Generation:
    """What :func:`generate` returns: the structures (``info``: replica, seed, sampling counters), ``config`` (every
    setting as it ran, resolved: ``config.json``), the sampler's ``report``, the prior's ``chemistry`` where it covers
    the structures' species (else None) and the ``request`` as asked (reruns it)."""

    structures: list[ase.Atoms]
    config: dict
    report: dict
    chemistry: Chemistry | None
    request: GenerateConfig


def generate(
    prior: str | Path | torch.nn.Module | ScoreFn,
    config: GenerateConfig | None = None,
    *,
    init: str | ase.Atoms | Sequence[ase.Atoms] = "random",
    guidance: GuidanceFn | None = None,
    progress: bool = True,
    checkpoint: SamplerCheckpoint | None = None,
    **settings: Any,
) -> Generation:
    """Generate ``n_replicas`` periodic structures of ``n_atoms`` atoms at ``density_g_cm3`` from a prior.

    - ``prior``: a checkpoint path or bundled name (:func:`~specguide.pretrained.load_prior`), a
      ``ScoreNetwork``, or any score callable (then give ``composition``);
    - ``preset``: ``"quality"`` (default: the predictor–corrector steps and local restarts the prior recommends)
      or ``"fast"`` (plain Euler–Maruyama, no restarts); ``corrector_steps``, ``n_restarts``, ``restart_mode``
      and ``t_restart`` given explicitly override it;
    - ``cell``: ``None`` for a cubic cell; otherwise a cell shape (3x3 rows or 3 lengths) scaled isotropically
      to the density. The side of the cubic cell is ``(N m̄ / rho)^(1/3)`` with masses from ASE;
    - ``composition``: ``{symbol: fraction}`` or a formula (``"SiO2"``); default the prior's training composition;
    - ``init``: ``"random"`` (uniform, ``t_start`` 0.999) or structures (a crystal seed, liquid snapshots; one,
      or one per replica, cycled) mapped by fractional coordinates into the target cell (``m x m x m``
      supercells when ``n_atoms`` asks for it) and noised to ``t_start`` (default 0.6);
    - restarts: ``n_restarts`` cycles at ``t_restart`` for atoms with coordination defects under ``bond_cutoffs``:
      by default those the prior's training data define (:class:`~specguide.chemistry.Chemistry`: bond cutoffs
      from the partial g(r); atoms of coordination classes the ensemble holds more often than the training data
      at this density are re-sampled), else CN outside ``cn_range`` (default carbon 2–4, silicon 3–4; 1.21 × covalent
      radii). ``restart_mode`` ``"replica"`` re-noises whole replicas, ``"local"`` only the defective atoms and
      their bonded neighbours, then one joint pass of all atoms from ``RestartOptions.t_relax``;
    - ``d_min``: veto distance, ``"auto"`` = a :class:`VetoSchedule` that tightens to the shortest pair per
      species pair of the prior's training data as the noise vanishes (else 0.7 × covalent radii, C–C 1.06 Å),
      a number, a per-pair dict, a :class:`VetoSchedule`, or ``None`` to disable;
    - ``snr``: signal-to-noise ratio of the Langevin corrector steps (see :func:`sample`);
    - ``guidance``: see :func:`sample`;
    - ``checkpoint``: a :class:`SamplerCheckpoint` that saves progress, so that the same call after an interruption
      continues where it stopped and gives the same structures;
    - ``device``: ``"auto"`` (a GPU where torch sees one), ``"cpu"``, ``"cuda"`` or ``"cuda:K"``
      (:func:`specguide.devices.resolve_device`): where the network and the sampler compute and draw their random
      numbers (a network given as a module is moved there). ``config["device"]`` records the device used.

    The settings are a :class:`GenerateConfig` (``config``), with ``settings`` (its field names as keywords)
    replacing its fields; ``init``, ``guidance``, ``progress`` and ``checkpoint`` are not part of it. Returns a
    :class:`Generation`.
    """
    request = (GenerateConfig() if config is None else config).replace(**settings)
    if request.density_g_cm3 is None:
        raise TypeError("generate() needs density_g_cm3 (g/cm³)")
    (density_g_cm3, n_atoms, n_replicas, steps, seed, preset, corrector_steps, snr, cell, composition, t_start, t_min,
     n_restarts, t_restart, restart_mode, bond_cutoffs, cn_range, d_min, max_reinit, device) = (
        getattr(request, f.name) for f in fields(GenerateConfig))  # fmt: skip
    device = resolve_device(device)
    meta: dict = {}
    if isinstance(prior, (str, Path)):
        network, meta = load_prior(prior, map_location=device, density_g_cm3=density_g_cm3)
        score_fn: ScoreFn = network
    else:
        score_fn = prior.to(device) if isinstance(prior, torch.nn.Module) else prior
        meta = dict(getattr(prior, "prior_meta", None) or {})
    settings = preset_settings(preset, meta)
    corrector_steps = settings["corrector_steps"] if corrector_steps is None else corrector_steps
    n_restarts = settings["n_restarts"] if n_restarts is None else n_restarts
    restart_mode = settings["restart_mode"] if restart_mode is None else restart_mode
    t_restart = settings["t_restart"] if t_restart is None else t_restart
    chemistry = prior_chemistry(meta)
    config = {
        "prior": str(prior) if isinstance(prior, (str, Path)) else meta.get("path", type(prior).__name__),
        "density_g_cm3": density_g_cm3,
        "n_atoms": n_atoms,
        "n_replicas": n_replicas,
        "steps": steps,
        "seed": seed,
        "preset": preset,
        "corrector_steps": corrector_steps,
        "snr": snr,
        "cell": None if cell is None else np.asarray(cell, dtype=float).tolist(),
        "composition": composition,
        "init": init if isinstance(init, str) else f"{1 if isinstance(init, ase.Atoms) else len(init)} structure(s)",
        "t_min": t_min,
        "n_restarts": n_restarts,
        "t_restart": t_restart,
        "restart_mode": restart_mode,
        "t_relax": RestartOptions.t_relax if restart_mode == "local" else None,
        "max_reinit": max_reinit,
        "guidance": None if guidance is None else getattr(guidance, "__name__", type(guidance).__name__),
        **device_record(device),
    }
    if meta:
        config["prior_meta"] = {k: meta[k] for k in PRIOR_META_KEYS if k in meta}
        config["prior_file"] = meta.get("path")
    prior_species = list(getattr(getattr(score_fn, "config", None), "species", ()) or [])
    schedule = getattr(score_fn, "schedule", None) or VESchedule()
    if n_replicas < 1:
        raise ValueError("n_replicas must be >= 1")

    if isinstance(init, str):
        if init != "random":
            raise ValueError(f"init must be 'random' or structures, got {init!r}")
        if n_atoms is None or n_atoms < 1:
            raise ValueError("n_atoms must be a positive integer")
        if not prior_species and composition is None:
            raise ValueError("give composition={symbol: fraction} for a score function without species information")
        zs = numbers_for_composition(composition, n_atoms, prior_species or list(parse_composition(composition)),
                                     chemistry)  # fmt: skip
        zs = [to_z(z) for z in zs]
        per_replica = [zs] * n_replicas
        fractional_seeds = None
        t_start = T_MAX if t_start is None else t_start
    else:
        seeds = _seed_structures([init] if isinstance(init, ase.Atoms) else list(init), n_replicas, n_atoms)
        n_atoms = len(seeds[0])
        if any(len(a) != n_atoms for a in seeds):
            raise ValueError("all initial structures must have the same number of atoms (after repetition)")
        per_replica = [list(a.numbers) for a in seeds]
        fractional_seeds = [a.get_scaled_positions(wrap=True) for a in seeds]
        t_start = 0.6 if t_start is None else t_start
    config["n_atoms"], config["t_start"] = n_atoms, t_start
    present = sorted({int(z) for zs in per_replica for z in zs})
    config["composition"] = {chemical_symbols[z]: round(per_replica[0].count(z) / n_atoms, 6) for z in present}
    if prior_species and set(present) - set(prior_species):
        missing = [chemical_symbols[z] for z in sorted(set(present) - set(prior_species))]
        raise ValueError(f"species {', '.join(missing)} are not covered by the prior "
                         f"({', '.join(chemical_symbols[z] for z in prior_species)})")  # fmt: skip
    check_request(score_fn, meta, density_g_cm3, [atomic_masses[z] for z in per_replica[0]], n_replicas, cell, device)
    covers = chemistry is not None and {to_z(s) for s in chemistry.composition} >= set(present)

    cells_list, numbers_list, positions_list = [], [], []
    for r in range(n_replicas):
        masses = atomic_masses[np.asarray(per_replica[r])]
        if cell is None:
            box = np.eye(3) * cubic_cell_side(n_atoms, masses.mean(), density_g_cm3)
        else:
            box = cell_of_volume(cell, volume_at_density(masses.sum(), density_g_cm3))
        cells_list.append(box)
        numbers_list.append(per_replica[r])
        if fractional_seeds is not None:
            positions_list.append(fractional_seeds[r] @ box)
    cells = torch.as_tensor(np.stack(cells_list), dtype=torch.float32, device=device)
    numbers = torch.as_tensor(np.concatenate(numbers_list), dtype=torch.long, device=device)
    batch = torch.repeat_interleave(torch.arange(n_replicas, device=device), n_atoms)
    positions = (None if fractional_seeds is None
                 else torch.as_tensor(np.concatenate(positions_list), dtype=torch.float32, device=device))  # fmt: skip

    if d_min == "auto":
        floor = PairTable.covalent(present, VETO_FACTOR)
        d_min = VetoSchedule(chemistry.veto_table(), floor) if covers else floor
    if bond_cutoffs is None:
        bond_cutoffs = chemistry.bond_table() if covers and chemistry.bond_cutoffs else None
    restart = None
    cn_reference = None
    if n_restarts > 0:
        if bond_cutoffs is None:
            bond_cutoffs = PairTable.covalent(present, BOND_FACTOR)
        if cn_range is None and covers and chemistry.coordination:
            cn_reference = chemistry.coordination_at(density_g_cm3)
        elif cn_range is None:
            cn_range = {z: DEFAULT_CN_RANGE[z] for z in present if z in DEFAULT_CN_RANGE}
            if not cn_range:
                raise ValueError(
                    "restart sampling needs cn_range={symbol or Z: (min CN, max CN)} for these species "
                    f"{[chemical_symbols[z] for z in present]}"
                )
        restart = RestartOptions(n_restarts, t_restart, bond_cutoffs, cn_range, restart_mode, cn_reference=cn_reference)
    config.update(
        {
            "bond_cutoffs": _jsonable_pairs(bond_cutoffs),
            "cn_range": None if cn_range is None else {str(k): list(v) for k, v in cn_range.items()},
            "cn_reference": cn_reference,
            "d_min": _jsonable_pairs(d_min),
            "chemistry": None if not covers else chemistry.source or "prior checkpoint",
        }
    )

    with torch.no_grad(), reproducible(device):
        result = sample(
            score_fn, cells, numbers, batch,
            positions=positions, schedule=schedule, steps=steps, t_start=t_start, t_min=t_min,
            generator=seeded_generator(seed, device), restart=restart, d_min=d_min,
            guidance=guidance, max_reinit=max_reinit, progress=progress, corrector_steps=corrector_steps, snr=snr,
            checkpoint=checkpoint,
        )  # fmt: skip
    structures = result.to_atoms()
    report = result.report
    for r, atoms in enumerate(structures):
        atoms.info.update(
            {
                "replica": r,
                "seed": int(seed),
                "n_reinitialised": report.n_reinitialised[r],
                "n_restart_cycles": report.n_restart_cycles[r],
            }
        )
        if report.defects_per_cycle:
            atoms.info["defects"] = report.defects_per_cycle[-1][r]
    config["generate"] = request.to_dict()  # the request as asked: GenerateConfig.from_dict reruns it
    return Generation(structures, config, report.to_dict(), chemistry if covers else None, request)


def generate_seeds(
    prior: str | Path | torch.nn.Module | ScoreFn,
    seeds: Sequence[int],
    config: GenerateConfig | None = None,
    *,
    init: str | ase.Atoms | Sequence[ase.Atoms] = "random",
    executor: ExecutorConfig | None = None,
    on_result: Callable[[int, Generation], None] | None = None,
    **settings: Any,
) -> list[Generation]:
    """One :func:`generate` per seed, the settings otherwise the same, run where ``executor`` says (default: one after
    another in this process): ``results[k]`` is what ``generate(prior, config, seed=seeds[k], ...)`` gives, the same
    structures wherever it runs. ``on_result(k, generation)`` runs in this process as each one arrives (in the order
    they finish), e.g. to write it at once. Each seed is one task (``prior`` and ``init`` must pickle; a prior file
    must be readable where the tasks run). No progress bars."""
    seeds = check_seeds(seeds)
    request = (GenerateConfig() if config is None else config).replace(**settings)
    tasks = [(prior, request.replace(seed=seed), init) for seed in seeds]
    return run_tasks(_generate_task, tasks, executor, start_method="spawn", on_result=on_result)


def _generate_task(task: tuple) -> Generation:
    prior, request, init = task
    return generate(prior, request, init=init, progress=False)


def write_generation(out_dir: str | Path, run: Generation, init: str | None = None, force: bool = False) -> dict:
    """Write what ``specguide generate`` writes for ``run`` into ``out_dir`` (refused if it holds files, unless
    ``force``): ``structures.extxyz``, ``config.json`` (every setting, the seed, the sampler's report; ``init``: the
    start recorded there, default ``run.config``'s) and ``summary.json`` (coordination, shortest pairs, RDF first
    peak, the prior's training data beside them). Returns the summary."""
    request = run.request
    record = {**run.config, "init": init if init is not None else run.config["init"], "report": run.report}
    summary = summarize(run.structures, cn_range=request.cn_range, chemistry=run.chemistry,
                        density_g_cm3=request.density_g_cm3)  # fmt: skip
    write_results(out_dir, run.structures, record, summary, force=force)
    return summary


def _jsonable_pairs(values):
    return values.to_dict() if isinstance(values, VetoSchedule) else pair_values_json(values)
