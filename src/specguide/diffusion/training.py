"""Training the structural prior by denoising score matching (Kwon et al. 2024 Sec. 4.4, Algorithm 2).

- loss: ``E || sigma(t) s(x_t, t) + eps ||^2`` with ``x_t = wrap(x_0 + sigma(t) eps)``, ``t ~ U(0.001, 0.999)``
  per structure; reported per Cartesian component (an all-zero score scores 1.0);
- augmentation: every structure of every minibatch is rotated by a uniformly random rotation, positions and
  cell rows together (the same periodic structure, rotated), so the network learns rotation equivariance;
- EMA of the weights (decay 0.999, with the usual ``(1 + n) / (10 + n)`` warm-up so that short runs are not
  dominated by the initial weights); the EMA weights are what is validated and exported;
- validation by structure (no snapshot appears in both sets), loss reported in 5 bins of ``t``.

:func:`train_prior` runs it with PyTorch Lightning and writes a self-describing checkpoint (our own format,
:func:`load_prior` reads it); a Lightning checkpoint ``<out>.last.ckpt`` beside it allows ``resume=True``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ase
import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import specguide
from specguide.analysis.structure import chemistry_of
from specguide.diffusion.schedule import T_MAX, T_MIN, VESchedule
from specguide.io import load_checkpoint, write_atomically
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.pretrained import PRIOR_FORMAT, PRIOR_FORMAT_VERSION, load_prior
from specguide.structure import density_g_cm3, wrap_positions

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------


def random_rotations(
    n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``[n, 3, 3]`` rotation matrices uniform on SO(3) (QR of a Gaussian matrix, signs fixed, det +1)."""
    gaussian = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    flip = torch.linalg.det(q) < 0
    q[flip, :, 0] = -q[flip, :, 0]
    return q.to(dtype)


def rotate_structures(
    positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor, rotations: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each structure (positions and cell rows) by its own matrix: ``x -> R x``, ``a_k -> R a_k``."""
    rotations = rotations.to(positions.dtype)
    new_positions = torch.einsum("nj,nij->ni", positions, rotations.index_select(0, batch))
    new_cells = torch.einsum("skj,sij->ski", cells, rotations)
    return new_positions, new_cells


# --------------------------------------------------------------------------------------------------
# loss and EMA
# --------------------------------------------------------------------------------------------------


def check_t_range(t_range: Sequence[float]) -> tuple[float, float]:
    """``(t_lo, t_hi)`` as floats, or a ValueError unless ``T_MIN <= t_lo < t_hi <= T_MAX``."""
    t_lo, t_hi = (float(v) for v in t_range)
    if not T_MIN <= t_lo < t_hi <= T_MAX:
        raise ValueError(f"t_range must satisfy {T_MIN} <= t_lo < t_hi <= {T_MAX}, got {tuple(t_range)}")
    return t_lo, t_hi


def dsm_loss(
    score_model: nn.Module,
    positions: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    schedule: VESchedule,
    *,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    t_range: tuple[float, float] = (T_MIN, T_MAX),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Denoising score-matching loss of a batch of clean structures.

    Returns ``(loss, per_structure_loss [S], t [S])`` with ``loss`` the mean over atoms and Cartesian
    components of ``(sigma s + eps)^2``. ``t`` and ``noise`` are drawn (from ``generator``) unless given.
    """
    n_structures = cells.shape[0]
    if t is None:
        t = t_range[0] + (t_range[1] - t_range[0]) * torch.rand(
            n_structures, generator=generator, dtype=positions.dtype
        )
    t = t.to(positions.dtype)
    if noise is None:
        noise = torch.randn(positions.shape, generator=generator, dtype=positions.dtype)
    sigma = schedule.sigma(t).index_select(0, batch)[:, None]
    noisy = wrap_positions(positions + sigma * noise, cells, batch)
    score = score_model(noisy, cells, numbers, batch, t).to(positions.dtype)
    residual = ((sigma * score + noise) ** 2).mean(dim=-1)  # [N]
    counts = torch.bincount(batch, minlength=n_structures).clamp(min=1).to(residual.dtype)
    per_structure = torch.zeros(n_structures, dtype=residual.dtype).index_add(0, batch, residual) / counts
    return residual.mean(), per_structure, t


class EMA:
    """Exponential moving average of a module's parameters (buffers are copied).

    ``decay_n = min(decay, (1 + n) / (10 + n))`` after ``n`` updates when ``warmup`` is on.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        if self.warmup:
            return min(self.decay, (1 + self.updates) / (10 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
        self.updates += 1


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


def data_summary(structures: Sequence[ase.Atoms]) -> dict:
    """Elements, density range (g/cm³), atoms-per-cell range and count of a training set."""
    densities = [density_g_cm3(a) for a in structures]
    sizes = [len(a) for a in structures]
    numbers = sorted({int(z) for a in structures for z in a.numbers})
    return {
        "n_structures": len(structures),
        "n_atoms_total": int(sum(sizes)),
        "elements": [ase.data.chemical_symbols[z] for z in numbers],
        "atomic_numbers": numbers,
        "density_g_cm3": [float(min(densities)), float(max(densities))],
        "atoms_per_cell": [int(min(sizes)), int(max(sizes))],
    }


class StructureDataset(Dataset):
    """Periodic structures as float32 tensors ``(positions, cell, numbers)``."""

    def __init__(self, structures: Sequence[ase.Atoms]):
        self.items = []
        for k, atoms in enumerate(structures):
            if not all(atoms.pbc):
                raise ValueError(f"training structure {k} is not periodic in all three directions")
            if atoms.get_volume() <= 0:
                raise ValueError(f"training structure {k} has a zero-volume cell")
            self.items.append(
                (
                    torch.as_tensor(atoms.get_positions(), dtype=torch.float32),
                    torch.as_tensor(np.asarray(atoms.cell[:]), dtype=torch.float32),
                    torch.as_tensor(atoms.numbers, dtype=torch.long),
                )
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def collate_structures(items) -> Batch:
    positions = torch.cat([p for p, _, _ in items])
    cells = torch.stack([c for _, c, _ in items])
    numbers = torch.cat([z for _, _, z in items])
    batch = torch.repeat_interleave(torch.arange(len(items)), torch.as_tensor([len(z) for _, _, z in items]))
    return positions, cells, numbers, batch


def split_by_structure(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and validation structures (at least one of each when ``n >= 2``)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = 0 if n < 2 or val_fraction <= 0 else min(n - 1, max(1, round(val_fraction * n)))
    return sorted(order[n_val:]), sorted(order[:n_val])


class PriorDataModule(pl.LightningDataModule):
    """Any list of ``ase.Atoms`` (mixed cells, densities, species), split into train / validation by structure.

    ``make_set`` turns a list of items into a dataset and ``collate`` batches it (defaults: structures only);
    ``val_indices`` fixes the validation structures instead of a random ``val_fraction``.
    """

    def __init__(
        self,
        structures: Sequence[Any],
        batch_size: int = 4,
        val_fraction: float = 0.1,
        seed: int = 0,
        *,
        make_set: Callable[[list], Dataset] = StructureDataset,
        collate: Callable = collate_structures,
        val_indices: Sequence[int] | None = None,
    ):
        super().__init__()
        if not structures:
            raise ValueError("no training structures given")
        self.structures = list(structures)
        self.batch_size = batch_size
        self.seed = seed
        self.collate = collate
        if val_indices is None:
            self.train_indices, self.val_indices = split_by_structure(len(self.structures), val_fraction, seed)
        else:
            self.val_indices = sorted({int(i) for i in val_indices})
            self.train_indices = [i for i in range(len(self.structures)) if i not in set(self.val_indices)]
            if (
                not self.train_indices
                or min(self.val_indices, default=0) < 0
                or max(self.val_indices, default=0) >= len(self.structures)
            ):
                raise ValueError("val_indices must name existing structures and leave some for training")
        self.train_set = make_set([self.structures[i] for i in self.train_indices])
        self.val_set = make_set([self.structures[i] for i in self.val_indices])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=min(self.batch_size, len(self.train_set)),
            shuffle=True,
            drop_last=False,
            collate_fn=self.collate,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader | list:
        if not len(self.val_set):
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, collate_fn=self.collate)


# --------------------------------------------------------------------------------------------------
# Lightning module
# --------------------------------------------------------------------------------------------------


class EMAModule(pl.LightningModule):
    """Lightning module around ``self.net`` with an EMA copy ``self.ema_net`` (what is validated and exported),
    the EMA state and the accumulated training seconds kept across Lightning checkpoints (``resume``)."""

    def setup_ema(self, net: nn.Module, ema_decay: float, ema_warmup: bool) -> None:
        self.net = net
        self._ema = EMA(self.net, ema_decay, ema_warmup)
        self.ema_net = self._ema.model  # registered as a submodule: saved in Lightning checkpoints
        self.train_seconds = 0.0  # accumulated over resumes
        self.last_val: dict[str, float] = {}
        self._step_start = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["specguide_ema_updates"] = self._ema.updates
        checkpoint["specguide_train_seconds"] = self.train_seconds
        checkpoint["specguide_last_val"] = self.last_val

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._ema.updates = int(checkpoint.get("specguide_ema_updates", 0))
        self.train_seconds = float(checkpoint.get("specguide_train_seconds", 0.0))
        self.last_val = dict(checkpoint.get("specguide_last_val", {}))

    def start_step_clock(self) -> None:
        if self._step_start is None:
            self._step_start = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._ema.update(self.net)
        now = time.perf_counter()
        if self._step_start is not None:
            self.train_seconds += now - self._step_start
        self._step_start = now

    def on_train_epoch_start(self) -> None:
        self._step_start = time.perf_counter()

    def validation_summary(self) -> dict:
        """What the exported checkpoint records about the last validation."""
        return {"final_val_loss": self.last_val.get("val/loss"), "validation": dict(self.last_val)}


class ScorePriorModule(EMAModule):
    """DSM training of a :class:`ScoreNetwork` with rotation augmentation and EMA (validated with EMA weights)."""

    def __init__(
        self,
        config: ScoreNetworkConfig | dict | None = None,
        lr: float = 1e-3,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        rotate: bool = True,
        n_val_bins: int = 5,
        val_seed: int = 1234,
        t_range: tuple[float, float] = (T_MIN, T_MAX),
    ):
        super().__init__()
        t_range = check_t_range(t_range)
        if isinstance(config, dict):
            config = ScoreNetworkConfig.from_dict(config)
        config = config or ScoreNetworkConfig()
        self.save_hyperparameters(
            {
                "config": config.to_dict(),
                "lr": lr,
                "ema_decay": ema_decay,
                "ema_warmup": ema_warmup,
                "rotate": rotate,
                "n_val_bins": n_val_bins,
                "val_seed": val_seed,
                "t_range": list(t_range),
            }
        )
        self.config = config
        self.t_range = t_range
        self.schedule = VESchedule(k=config.k)
        self.setup_ema(ScoreNetwork(config), ema_decay, ema_warmup)

    def validation_summary(self) -> dict:
        return {
            "final_val_loss": self.last_val.get("val/loss"),
            "val_loss_by_t": {k: v for k, v in self.last_val.items() if k != "val/loss"},
        }

    def configure_optimizers(self):
        return torch.optim.RAdam(self.net.parameters(), lr=self.hparams.lr)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        positions, cells, numbers, index = batch
        self.start_step_clock()
        if self.hparams.rotate:
            rotations = random_rotations(cells.shape[0], dtype=positions.dtype).to(positions.device)
            positions, cells = rotate_structures(positions, cells, index, rotations)
        loss, _, _ = dsm_loss(self.net, positions, cells, numbers, index, self.schedule, t_range=self.t_range)
        self.log("train/loss", loss, prog_bar=True, batch_size=cells.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(self.hparams.n_val_bins, dtype=torch.float64)
        self._val_counts = torch.zeros(self.hparams.n_val_bins, dtype=torch.float64)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        positions, cells, numbers, index = batch
        n_bins = self.hparams.n_val_bins
        edges = torch.linspace(T_MIN, T_MAX, n_bins + 1)
        generator = torch.Generator().manual_seed(self.hparams.val_seed + 7919 * batch_idx)
        for b in range(n_bins):
            t = (edges[b] + (edges[b + 1] - edges[b]) * torch.rand(cells.shape[0], generator=generator)).to(
                positions.dtype
            )
            noise = torch.randn(positions.shape, generator=generator, dtype=positions.dtype)
            _, per_structure, _ = dsm_loss(
                self.ema_net, positions, cells, numbers, index, self.schedule, t=t, noise=noise
            )
            self._val_sums[b] += per_structure.sum().double().cpu()
            self._val_counts[b] += cells.shape[0]

    def on_validation_epoch_end(self) -> None:
        if self._val_counts.sum() == 0:
            return
        edges = torch.linspace(T_MIN, T_MAX, self.hparams.n_val_bins + 1)
        per_bin = self._val_sums / self._val_counts.clamp(min=1)
        values = {}
        for b in range(self.hparams.n_val_bins):
            name = f"val/loss_t{edges[b]:.2f}-{edges[b + 1]:.2f}"
            values[name] = float(per_bin[b])
            self.log(name, float(per_bin[b]))
        values["val/loss"] = float(per_bin.mean())
        self.log("val/loss", values["val/loss"], prog_bar=True)
        self.last_val = values


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------


def save_prior(
    path: str | Path,
    network: ScoreNetwork,
    *,
    data: dict,
    training: dict,
    chemistry: dict | None = None,
    sampling: dict | None = None,
) -> Path:
    """Write our self-describing prior checkpoint atomically (weights given are stored as is).

    ``chemistry``: :meth:`specguide.chemistry.Chemistry.to_dict` of the training data (composition, bond cutoffs,
    coordination, shortest pairs), which generation uses by default; ``sampling``: recommended sampler settings
    per preset, e.g. ``{"quality": {"corrector_steps": 16, "n_restarts": 6, "restart_mode": "local"}}``.
    """
    path = Path(path)
    payload = {
        "format": PRIOR_FORMAT,
        "format_version": PRIOR_FORMAT_VERSION,
        "specguide_version": specguide.__version__,
        "network": network.config.to_dict(),
        "k": float(network.config.k),
        "schedule": {"kind": "variance-exploding", "sigma": "k*t", "k": float(network.config.k)},
        "state_dict": {name: value.detach().cpu().clone() for name, value in network.state_dict().items()},
        "data": data,
        "training": training,
    }
    if chemistry is not None:
        payload["chemistry"] = chemistry
    if sampling is not None:
        payload["sampling"] = sampling
    write_atomically(path, lambda tmp: torch.save(payload, tmp))
    return path


# --------------------------------------------------------------------------------------------------
# train_prior
# --------------------------------------------------------------------------------------------------


class _WallClockLimit(pl.Callback):
    """Stop after ``minutes`` of this call (unlike Lightning's Timer, not carried over on resume)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.start = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.seconds is not None and time.monotonic() - self.start > self.seconds:
            trainer.should_stop = True


class _TrainingProgress(pl.Callback):
    """One progress line for a training run: elapsed of the time limit (or epochs of the limit), step, losses.

    Replaces Lightning's bar, which shows ``Epoch N/-2`` when training is limited by time."""

    def __init__(self, minutes: float | None, max_epochs: int | None):
        self.minutes, self.max_epochs = minutes, max_epochs
        self.progress = None
        self.task = None

    def on_train_start(self, trainer, pl_module) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.start = time.monotonic()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True))  # fmt: skip
        total = 60.0 * self.minutes if self.minutes is not None else float(self.max_epochs or 1)
        self.task = self.progress.add_task("training", total=total)
        self.progress.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.progress is None or trainer.global_step % 10:
            return
        done = time.monotonic() - self.start if self.minutes is not None else trainer.current_epoch
        loss = trainer.callback_metrics.get("train/loss")
        val = getattr(pl_module, "last_val", None) or {}
        text = f"training: step {trainer.global_step}, epoch {trainer.current_epoch}"
        if loss is not None:
            text += f", loss {float(loss):.3f}"
        if "val/loss" in val:
            text += f", validation {float(val['val/loss']):.3f}"
        self.progress.update(self.task, completed=done, description=text)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.progress is not None:
            self.progress.stop()


class _ExportPrior(pl.Callback):
    """After every validation write our checkpoint (EMA weights, via ``save``) and the Lightning state beside
    it, both atomically, so an interrupted run leaves a usable model and can be resumed."""

    def __init__(self, path: Path, lightning_path: Path, data: dict, extra: dict, save: Callable | None = None):
        self.path, self.lightning_path, self.data, self.extra = path, lightning_path, data, extra
        self.save = save or (lambda path, net, data, training: save_prior(path, net, data=data, training=training))

    def save_state(self, trainer) -> None:
        write_atomically(self.lightning_path, lambda tmp: trainer.save_checkpoint(tmp, weights_only=False))

    def export(self, trainer, module: EMAModule) -> None:
        training = dict(self.extra)
        training.update(
            {
                "epochs": round(trainer.global_step / max(1, int(trainer.num_training_batches)), 2),
                "steps": int(trainer.global_step),
                "train_seconds": round(module.train_seconds, 2),
                **module.validation_summary(),
                "ema_updates": module._ema.updates,
            }
        )
        self.save(self.path, module.ema_net, self.data, training)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self.export(trainer, pl_module)
            self.save_state(trainer)


def training_paths(
    out: str | Path,
    default_name: str,
    resume: bool,
    max_time_minutes: float | None,
    max_epochs: int | None,
    max_steps: int,
) -> tuple[Path, Path]:
    """``(checkpoint path, Lightning state path)`` for a training run writing ``out`` (a directory gets
    ``default_name``); checks that the run has a stopping rule and that a resume has a state to start from."""
    if max_time_minutes is None and max_epochs is None and max_steps < 0:
        raise ValueError("training needs a stopping rule: max_time_minutes, max_epochs or max_steps")
    out = Path(out)
    if out.is_dir() or out.suffix == "":
        out = out / default_name
    out.parent.mkdir(parents=True, exist_ok=True)
    lightning_ckpt = out.parent / f"{out.stem}.last.ckpt"
    if resume and not lightning_ckpt.is_file():
        raise FileNotFoundError(f"{lightning_ckpt}: no training state to resume from (train without resume first)")
    if not resume and lightning_ckpt.exists():
        warnings.warn(f"{lightning_ckpt} exists and resume=False: training starts afresh", stacklevel=3)
    return out, lightning_ckpt


def load_training_state(path: str | Path) -> dict:
    """The Lightning training state saved beside a checkpoint, read as tensors and plain data only
    (:func:`specguide.io.load_checkpoint`: a file that would run code when unpickled is refused, never executed)."""
    fix = "start the training again without --resume"
    state = load_checkpoint(path, "specguide training state", fix)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"{path}: not a specguide training state; {fix}")
    return state


def fit_module(
    module: EMAModule,
    datamodule: PriorDataModule,
    exporter: _ExportPrior,
    *,
    log_dir: Path,
    log_name: str,
    max_time_minutes: float | None,
    max_epochs: int | None,
    max_steps: int,
    resume: bool,
    progress: bool,
    accelerator: str,
    gradient_clip_val: float | None,
    val_every_n_steps: int,
) -> None:
    """Run Lightning on ``module`` (wall-clock limit, CSV log, validation about every ``val_every_n_steps``
    steps in whole epochs, resume from ``exporter.lightning_path``), then export the final EMA weights."""
    batch_size = datamodule.batch_size
    batches_per_epoch = math.ceil(len(datamodule.train_set) / min(batch_size, len(datamodule.train_set)))
    quiet = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # "GPU available: False", tips about cloud products: not what a user needs to read
        logger.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=max_epochs if max_epochs is not None else -1,
            max_steps=max_steps,
            callbacks=[_WallClockLimit(max_time_minutes), exporter]
            + ([_TrainingProgress(max_time_minutes, max_epochs)] if progress else []),
            check_val_every_n_epoch=max(1, round(val_every_n_steps / batches_per_epoch)),
            enable_checkpointing=False,
            logger=pl.loggers.CSVLogger(log_dir, name=log_name),
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=10,
            num_sanity_val_steps=0,
            gradient_clip_val=gradient_clip_val,
            deterministic=False,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            ckpt_path = str(exporter.lightning_path) if resume else None
            if resume:  # refuses anything but tensors and plain data, naming the file
                load_training_state(exporter.lightning_path)
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            if datamodule.val_set and not module.last_val:  # stopped before the first validation: validate now
                trainer.validate(module, datamodule=datamodule, verbose=False)
            exporter.save_state(trainer)
            exporter.export(trainer, module)
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def train_prior(
    structures: Sequence[ase.Atoms],
    out: str | Path,
    *,
    max_time_minutes: float | None = None,
    max_epochs: int | None = None,
    max_steps: int = -1,
    resume: bool = False,
    init_from: str | Path | None = None,
    config: ScoreNetworkConfig | None = None,
    seed: int = 0,
    batch_size: int = 4,
    lr: float = 1e-3,
    ema_decay: float = 0.999,
    val_fraction: float = 0.1,
    rotate: bool = True,
    progress: bool = True,
    accelerator: str = "cpu",
    gradient_clip_val: float | None = None,
    val_every_n_steps: int = 50,
    t_range: tuple[float, float] = (T_MIN, T_MAX),
) -> Path:
    """Train a score prior on ``structures`` and write ``out`` (a ``.pt`` file; a directory gets ``prior.pt``).

    Stops at ``max_time_minutes`` of wall time for this call, ``max_epochs`` (total, counted across resumes)
    or ``max_steps``, whichever first; at least one of them must be given. The EMA weights and a description
    (network config, k, training-data summary, training statistics) go to ``out``; the full Lightning state
    goes to ``<out stem>.last.ckpt`` beside it, which ``resume=True`` continues from. ``config`` defaults to
    :class:`ScoreNetworkConfig` with the data's species; ``init_from`` (a prior name or ``.pt`` file) starts from
    that prior's network and weights with a fresh optimizer: fine-tuning (``config``, if given, must match). Validation
    (EMA weights, loss in 5 bins of t, logged to ``<out stem>_logs/`` as CSV) runs about every
    ``val_every_n_steps`` steps (whole epochs), always over the full range of t. ``t_range`` (within
    ``(T_MIN, T_MAX)``): the diffusion times training draws from, uniformly; a narrower range at low t spends a
    fine-tuning run on the small noise levels (σ = k t) only.
    """
    structures = list(structures)
    t_range = check_t_range(t_range)
    out, lightning_ckpt = training_paths(out, "prior.pt", resume, max_time_minutes, max_epochs, max_steps)

    data = data_summary(structures)
    if init_from is not None:
        if resume:
            raise ValueError("init_from starts a new run from a prior's weights; it cannot be combined with resume")
        start, start_meta = load_prior(init_from)
        if config is not None and start.config != config:
            raise ValueError(
                f"{init_from}: its network config {start.config.to_dict()} differs from {config.to_dict()}"
            )
        config = start.config
        missing = sorted(set(data["atomic_numbers"]) - set(config.species))
        if missing:
            raise ValueError(f"{init_from}: its network has no species {missing} of the training data")
    if config is None:
        config = ScoreNetworkConfig(species=tuple(data["atomic_numbers"]))
    missing = sorted(set(data["atomic_numbers"]) - set(config.species))
    if missing:
        raise ValueError(f"training structures contain atomic numbers {missing} not in config.species {config.species}")

    pl.seed_everything(seed, workers=True, verbose=False)
    datamodule = PriorDataModule(structures, batch_size=batch_size, val_fraction=val_fraction, seed=seed)
    data = dict(data, n_train=len(datamodule.train_set), n_val=len(datamodule.val_set))
    module = ScorePriorModule(config, lr=lr, ema_decay=ema_decay, rotate=rotate, t_range=t_range)
    if init_from is not None:
        module.net.load_state_dict(start.state_dict())
        module.ema_net.load_state_dict(start.state_dict())
    if resume:
        stored = load_training_state(lightning_ckpt)
        stored_config = stored.get("hyper_parameters", {}).get("config")
        if stored_config is not None and ScoreNetworkConfig.from_dict(stored_config) != config:
            raise ValueError(
                f"{lightning_ckpt}: was trained with network config {stored_config}, not {config.to_dict()}"
            )

    extra = {
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": "RAdam",
        "ema_decay": ema_decay,
        "rotation_augmentation": rotate,
        "t_range": list(t_range),
    }
    if init_from is not None:
        extra["init_from"] = {"prior": str(init_from), "data": start_meta.get("data"),
                              "training": start_meta.get("training")}  # fmt: skip
    chemistry = chemistry_of(structures, source=f"{len(structures)} training structures").to_dict()
    sampling = start_meta.get("sampling") if init_from is not None else None

    def save(path, net, data, training):
        return save_prior(path, net, data=data, training=training, chemistry=chemistry, sampling=sampling)

    exporter = _ExportPrior(out, lightning_ckpt, data, extra, save=save)
    fit_module(module, datamodule, exporter, log_dir=out.parent, log_name=f"{out.stem}_logs",
               max_time_minutes=max_time_minutes, max_epochs=max_epochs, max_steps=max_steps, resume=resume,
               progress=progress, accelerator=accelerator, gradient_clip_val=gradient_clip_val,
               val_every_n_steps=val_every_n_steps)  # fmt: skip
    return out
