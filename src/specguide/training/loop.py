"""The training loop the prior and the surrogates share: Lightning with an EMA of the weights, data split by
structure, a wall-clock limit, resumable state and export of the EMA weights after every validation.

- :class:`EMA`: exponential moving average of the weights (decay 0.999 with the ``(1 + n) / (10 + n)`` warm-up,
  so that short runs are not dominated by the initial weights); also the site denoiser's
  (:mod:`specguide.training.sites`);
- :class:`StructureDataModule`: any list of items split into training and validation sets *by structure*;
- :class:`EMAModule`: a Lightning module around ``net`` whose EMA copy is validated and exported;
- :func:`fit_module`: one Lightning run (CSV log, validation about every N steps, wall-clock limit, ``resume``
  from the state saved beside the checkpoint), ending with :class:`CheckpointExport` of the EMA weights in the
  model's own checkpoint format;
- :class:`TrainingHardware`: where it runs (``--device``, ``--devices``, ``--strategy``): one CPU or GPU, or several
  GPUs with distributed data parallel (``ddp``), where each process trains on its share of the batches, the
  validation sums are added over the processes and only the first process writes files.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from specguide.config import Config
from specguide.devices import device_record, resolve_device
from specguide.io import InputError, load_checkpoint, write_atomically
from specguide.structure import density_g_cm3

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # positions, cells, numbers, batch


# --------------------------------------------------------------------------------------------------
# where training runs
# --------------------------------------------------------------------------------------------------

# Lightning's strategies: "ddp" starts the running command (or script) again once per further device, and every
# process runs what follows the training too (only the first one writes); spawning strategies are not offered: what
# fit_module does after the fit would run in a process that did not train
STRATEGIES = ("auto", "ddp")


@dataclass
class TrainingHardware(Config):
    """Where Lightning trains: ``device`` ``auto`` | ``cpu`` | ``cuda`` | ``cuda:K``
    (:func:`specguide.devices.resolve_device`), ``devices`` how many of them (GPUs with ``cuda``; CPU processes with
    ``cpu``), ``strategy`` Lightning's: ``auto`` (one device) or ``ddp`` (distributed data parallel, one process per
    device; the command is started again in each, so run it as a command or a script, not in a notebook).
    ``cuda:K`` trains on GPU K alone."""

    device: str = "auto"
    devices: int = 1
    strategy: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.devices, int) or self.devices < 1:
            raise InputError(f"--devices {self.devices}: give a positive number of devices")
        if self.strategy not in STRATEGIES:
            raise InputError(f"--strategy {self.strategy}: choose one of {', '.join(STRATEGIES)}")

    def trainer_arguments(self) -> dict:
        """``accelerator``, ``devices`` and ``strategy`` for ``pl.Trainer`` (``InputError`` for what this machine
        cannot run: a GPU torch does not see, more GPUs than there are)."""
        device = resolve_device(self.device)
        if device.type == "cpu":
            return {"accelerator": "cpu", "devices": self.devices, "strategy": self.strategy}
        if ":" in self.device:
            if self.devices != 1:
                raise InputError(f"--device {self.device} names one GPU; give --device cuda with --devices "
                                 f"{self.devices} to train on several")  # fmt: skip
            return {"accelerator": "gpu", "devices": [device.index], "strategy": self.strategy}
        count = torch.cuda.device_count()
        if self.devices > count:
            raise InputError(f"--devices {self.devices}: torch sees {count} GPU(s)")
        return {"accelerator": "gpu", "devices": self.devices, "strategy": self.strategy}

    def record(self) -> dict:
        """What a checkpoint records of where it was trained: the request and the device it resolved to."""
        return {**self.to_dict(), "resolved": device_record(resolve_device(self.device))}


# --------------------------------------------------------------------------------------------------
# EMA and data
# --------------------------------------------------------------------------------------------------


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


class StructureDataModule(pl.LightningDataModule):
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
# Lightning module, callbacks and the run
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

    def summed_over_processes(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (a CPU tensor of sums) added over the processes of a multi-device run, so that every process
        reports the validation of the whole set; on one device they are returned as they are."""
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1:
            return values
        return trainer.strategy.reduce(values.to(self.device), reduce_op="sum").cpu()


class _WallClockLimit(pl.Callback):
    """Stop after ``minutes`` of this call (unlike Lightning's Timer, not carried over on resume)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else 60.0 * minutes
        self.start = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.seconds is None:
            return
        late = time.monotonic() - self.start > self.seconds
        if trainer.world_size > 1:  # the first process's clock decides for all, so that they stop together
            late = trainer.strategy.broadcast(late)
        if late:
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

        if not trainer.is_global_zero:  # one progress line for a multi-device run
            return
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


class CheckpointExport(pl.Callback):
    """After every validation write our checkpoint (EMA weights, via ``save``) and the Lightning state beside
    it, both atomically, so an interrupted run leaves a usable model and can be resumed (priors, surrogates)."""

    def __init__(self, path: Path, lightning_path: Path, data: dict, extra: dict, save: Callable):
        self.path, self.lightning_path, self.data, self.extra = path, lightning_path, data, extra
        # save(path, network, data=, training=): writes the model's own checkpoint format; a module-level function
        # or a functools.partial of one (picklable, as Lightning's process launchers may need)
        self.save = save

    def save_state(self, trainer) -> None:
        # Lightning writes the full resume state (weights, optimiser, loops); it is read back only through
        # specguide.io's torch.load(weights_only=True) loader
        if not trainer.is_global_zero:  # every process takes part in the call; only the first one writes
            trainer.save_checkpoint(self.lightning_path)
            return
        write_atomically(self.lightning_path, trainer.save_checkpoint)

    def export(self, trainer, module: EMAModule) -> None:
        if not trainer.is_global_zero:  # the EMA weights are the same in every process: the first one writes
            return
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
        self.save(self.path, module.ema_net, data=self.data, training=training)

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
    datamodule: StructureDataModule,
    exporter: CheckpointExport,
    *,
    log_dir: Path,
    log_name: str,
    max_time_minutes: float | None,
    max_epochs: int | None,
    max_steps: int,
    resume: bool,
    progress: bool,
    hardware: TrainingHardware,
    gradient_clip_val: float | None,
    val_every_n_steps: int,
) -> None:
    """Run Lightning on ``module`` (wall-clock limit, CSV log, validation about every ``val_every_n_steps``
    steps in whole epochs, resume from ``exporter.lightning_path``) on ``hardware``, then export the final EMA
    weights."""
    batch_size = datamodule.batch_size
    batches_per_epoch = math.ceil(len(datamodule.train_set) / min(batch_size, len(datamodule.train_set)))
    quiet = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # "GPU available: False", tips about cloud products: not what a user needs to read
        logger.setLevel(logging.WARNING)
    try:
        trainer = pl.Trainer(
            **hardware.trainer_arguments(),
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
