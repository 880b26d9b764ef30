"""Training per-atom spectrum surrogates (``specguide train-surrogate``).

- loss: mean squared error of the normalised per-site spectra (``(y − mean) / spread``: the mean spectrum
  of the training sites and their RMS spread over all grid points, one number, so that near-constant pre-edge
  points are not amplified); predicting the training mean for every atom scores ≈ 1;
- augmentation: coordinate noise — each structure of a minibatch is clean with probability
  ``clean_fraction``, else every atom moves by Gaussian noise of a width drawn uniformly in
  ``(0, noise_max]`` (default 0.8 Å, as GLASS), with the clean structure's spectra as labels, so the surrogate
  stays smooth and sensible on the noisy / clean-estimate structures met along a denoising trajectory;
  rotations need no augmentation (the network is invariant by construction);
- EMA of the weights; the EMA weights are validated and exported;
- validation by structure (a structure's atoms are all in one set), reported as: normalised MSE (``val/loss``),
  per-atom RMSE and relative L2 error ``‖ŷ − y‖ / ‖y‖``, the structure-averaged relative L2 error of the mean
  spectrum over the absorbing sites, and the normalised MSE at 0.3 Å noise.

The Lightning / EMA / export loop is the prior's (:mod:`specguide.training.loop`); :func:`save_surrogate` writes the
checkpoint :func:`specguide.pretrained.load_surrogate` reads.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from ase.data import chemical_symbols
from torch.utils.data import Dataset

import specguide
from specguide.chemistry import BOND_FACTOR, PairTable, coordination_numbers
from specguide.datasets.spectra import SpectraDataset
from specguide.graph import batch_from_atoms
from specguide.io import write_atomically
from specguide.models.surrogate import GRID_UNITS, KINDS, SpectrumSurrogate, SurrogateConfig
from specguide.pretrained import SURROGATE_FORMAT, SURROGATE_FORMAT_VERSION
from specguide.structure import density_g_cm3, wrap_positions
from specguide.training.loop import (
    CheckpointExport,
    EMAModule,
    StructureDataModule,
    TrainingHardware,
    data_summary,
    fit_module,
    training_paths,
)

VAL_NOISE = 0.3  # Å, the noisy validation level


class SiteSpectraSet(Dataset):
    """Items ``(atoms, spectra [n_sites, G], sites [n_sites])`` as float32 / long tensors."""

    def __init__(self, items: Sequence[tuple]):
        self.items = [
            (
                torch.as_tensor(atoms.get_positions(), dtype=torch.float32),
                torch.as_tensor(np.asarray(atoms.cell[:]), dtype=torch.float32),
                torch.as_tensor(atoms.numbers, dtype=torch.long),
                torch.as_tensor(spectra, dtype=torch.float32),
                torch.as_tensor(sites, dtype=torch.long),
            )
            for atoms, spectra, sites in items
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def collate_site_spectra(items) -> tuple[torch.Tensor, ...]:
    """``(positions, cells, numbers, batch, targets [M, G], sites [M] (global atom index), site_batch [M])``."""
    sizes = torch.as_tensor([len(z) for _, _, z, _, _ in items])
    offsets = torch.cumsum(sizes, 0) - sizes
    positions = torch.cat([p for p, *_ in items])
    cells = torch.stack([c for _, c, *_ in items])
    numbers = torch.cat([z for _, _, z, _, _ in items])
    batch = torch.repeat_interleave(torch.arange(len(items)), sizes)
    targets = torch.cat([y for *_, y, _ in items])
    sites = torch.cat([s + offsets[k] for k, (*_, s) in enumerate(items)])
    site_batch = torch.cat([torch.full((len(s),), k) for k, (*_, s) in enumerate(items)])
    return positions, cells, numbers, batch, targets, sites, site_batch


def noisy_positions(
    positions: torch.Tensor,
    cells: torch.Tensor,
    batch: torch.Tensor,
    noise_max: float,
    clean_fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Positions with per-structure Gaussian noise (width ~ U(0, noise_max] Å, or 0 with ``clean_fraction``)."""
    n = cells.shape[0]
    device = positions.device if generator is None else generator.device  # drawn there, then moved
    widths = noise_max * (1.0 - torch.rand(n, generator=generator, dtype=positions.dtype, device=device))
    clean = torch.rand(n, generator=generator, device=device) < clean_fraction
    widths = torch.where(clean, torch.zeros_like(widths), widths).to(positions.device)
    noise = torch.randn(positions.shape, generator=generator, dtype=positions.dtype, device=device).to(positions)
    return wrap_positions(positions + widths.index_select(0, batch)[:, None] * noise, cells, batch)


def save_surrogate(
    path: str | Path,
    network: SpectrumSurrogate,
    *,
    kind: str,
    absorber: int,
    grid: torch.Tensor,
    grid_unit: str,
    data: dict,
    training: dict,
    quantity: str | None = None,
) -> Path:
    """Write a self-describing surrogate checkpoint atomically (network, grid, absorber, kind, provenance);
    ``quantity`` names what the spectra are, with units (e.g. ``"k²χ(k) (Å⁻²)"``), for file headers and plots."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if grid_unit not in GRID_UNITS:
        raise ValueError(f"grid_unit must be one of {list(GRID_UNITS)}, got {grid_unit!r}")
    grid = torch.as_tensor(grid, dtype=torch.float64).flatten()
    if grid.numel() != network.config.n_grid:
        raise ValueError(f"grid has {grid.numel()} points, the network {network.config.n_grid}")
    payload = {
        "format": SURROGATE_FORMAT,
        "format_version": SURROGATE_FORMAT_VERSION,
        "specguide_version": specguide.__version__,
        "network": network.config.to_dict(),
        "kind": kind,
        "absorber": int(absorber),
        "grid": grid.tolist(),
        "grid_unit": grid_unit,
        "state_dict": {name: value.detach().cpu().clone() for name, value in network.state_dict().items()},
        "data": data,
        "training": training,
    }
    if quantity:
        payload["quantity"] = quantity
    path = Path(path)
    write_atomically(path, lambda tmp: torch.save(payload, tmp))
    return path


DENSITY_GROUP_WIDTH = 0.05  # g/cm³: training structures this close to a structure's density form its group
SINGLE_ENVIRONMENT = 0.01  # site spectra spread (relative) below which a structure is a crystal: one environment


def _site_spread(spectra: np.ndarray) -> float:
    """Mean relative distance of a structure's site spectra from their mean (0 for a perfect crystal)."""
    mean = spectra.mean(0)
    return float(np.linalg.norm(spectra - mean, axis=1).mean() / max(float(np.linalg.norm(mean)), 1e-12))


def _relative_l2(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """‖predicted − truth‖ / ‖truth‖ along the last axis."""
    return np.linalg.norm(predicted - truth, axis=-1) / np.maximum(np.linalg.norm(truth, axis=-1), 1e-12)


def site_coordination(dataset: SpectraDataset, index: int) -> np.ndarray:
    """Coordination number of each absorbing site of structure ``index``: neighbours of any species closer than
    1.21 x the sum of covalent radii (C–C 1.84 Å)."""
    atoms = dataset.structures[index]
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    table = PairTable.covalent(numbers.tolist(), BOND_FACTOR)
    cn = coordination_numbers(positions.double(), cells.double(), numbers, batch, table)
    return cn.numpy()[np.asarray(dataset.sites[index])]


def spectrum_baselines(
    dataset: SpectraDataset, train_indices: Sequence[int], val_indices: Sequence[int]
) -> dict[str, float | dict]:
    """Held-out errors of two trivial predictors built from the training structures (relative L2, as the
    surrogate's ``val/rel_l2_atom`` and ``val/rel_l2_structure``):

    - ``cn_lookup_rel_l2_atom``: each held-out site gets the mean training spectrum of sites with its
      coordination number (:func:`site_coordination`; the overall training mean for a number never seen);
    - ``density_mean_rel_l2_structure``: each held-out structure's mean spectrum is predicted by the mean of the
      disordered training structures' mean spectra within ``DENSITY_GROUP_WIDTH`` g/cm³ of its density (else
      those at the nearest training density); crystals (every site the same spectrum) are left out of the
      groups, as one environment says nothing about the disorder at their density.
    """
    train_indices, val_indices = list(train_indices), list(val_indices)
    spectra = [np.asarray(s, dtype=np.float64) for s in dataset.spectra]
    train_cn = np.concatenate([site_coordination(dataset, k) for k in train_indices])
    train_sites = np.concatenate([spectra[k] for k in train_indices])
    overall = train_sites.mean(0)
    table = {int(c): train_sites[train_cn == c].mean(0) for c in np.unique(train_cn)}
    densities = np.array([density_g_cm3(a) for a in dataset.structures])
    disordered = [k for k in train_indices if _site_spread(spectra[k]) > SINGLE_ENVIRONMENT] or train_indices
    train_means = np.stack([spectra[k].mean(0) for k in disordered])
    train_density = densities[disordered]
    atom_errors, structure_errors = [], []
    for k in val_indices:
        cn = site_coordination(dataset, k)
        lookup = np.stack([table.get(int(c), overall) for c in cn])
        atom_errors.append(_relative_l2(lookup, spectra[k]))
        gap = np.abs(train_density - densities[k])
        members = gap <= max(DENSITY_GROUP_WIDTH, gap.min() + 1e-9)
        structure_errors.append(float(_relative_l2(train_means[members].mean(0), spectra[k].mean(0))))
    return {
        "cn_lookup_rel_l2_atom": float(np.concatenate(atom_errors).mean()) if atom_errors else float("nan"),
        "density_mean_rel_l2_structure": float(np.mean(structure_errors)) if structure_errors else float("nan"),
        "training_mean_rel_l2_atom": float(
            np.concatenate([_relative_l2(overall[None], spectra[k]) for k in val_indices]).mean()
        ) if val_indices else float("nan"),
        "cn_counts_train": {str(c): int((train_cn == c).sum()) for c in sorted(table)},
        "definition": "relative L2 error ‖ŷ − y‖/‖y‖ on the validation structures; coordination within 1.21 x "
        f"covalent radii; density groups ±{DENSITY_GROUP_WIDTH} g/cm³ of disordered training structures",
    }  # fmt: skip


LR_SCHEDULES = ("constant", "cosine")


def cosine_lr(lr: float, fraction: float, min_fraction: float = 0.05) -> float:
    """Cosine decay from ``lr`` (fraction 0) to ``min_fraction * lr`` (fraction ≥ 1)."""
    fraction = min(max(fraction, 0.0), 1.0)
    return lr * (min_fraction + (1.0 - min_fraction) * 0.5 * (1.0 + math.cos(math.pi * fraction)))


class SurrogateModule(EMAModule):
    """MSE training of a :class:`SpectrumSurrogate` with coordinate-noise augmentation and EMA."""

    def __init__(
        self,
        config: SurrogateConfig | dict,
        lr: float = 1e-3,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        noise_max: float = 0.8,
        clean_fraction: float = 0.5,
        val_seed: int = 1234,
        lr_schedule: str = "constant",
        lr_min_fraction: float = 0.05,
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if isinstance(config, dict):
            config = SurrogateConfig.from_dict(config)
        self.save_hyperparameters(
            {"config": config.to_dict(), "lr": lr, "ema_decay": ema_decay, "ema_warmup": ema_warmup,
             "noise_max": noise_max, "clean_fraction": clean_fraction, "val_seed": val_seed,
             "lr_schedule": lr_schedule, "lr_min_fraction": lr_min_fraction}
        )  # fmt: skip
        self.config = config
        self.setup_ema(SpectrumSurrogate(config), ema_decay, ema_warmup)
        # cosine horizon of this call: wall seconds and/or optimizer steps (set by train_surrogate)
        self.lr_horizon: dict[str, float | None] = {"seconds": None, "steps": None}
        self._fit_start: float | None = None

    def on_train_start(self) -> None:
        self._fit_start = time.monotonic()
        self._fit_start_step = int(self.global_step)

    def progress_fraction(self) -> float:
        """Fraction of this call's horizon done: the larger of wall time / seconds and steps / steps (0…1)."""
        done = 0.0
        seconds, steps = self.lr_horizon["seconds"], self.lr_horizon["steps"]
        if seconds and self._fit_start is not None:
            done = max(done, (time.monotonic() - self._fit_start) / seconds)
        if steps:
            done = max(done, (self.global_step - getattr(self, "_fit_start_step", 0)) / steps)
        return min(done, 1.0)

    def configure_optimizers(self):
        return torch.optim.RAdam(self.net.parameters(), lr=self.hparams.lr)

    @staticmethod
    def normalised_error(net: SpectrumSurrogate, positions, cells, numbers, batch, targets, sites) -> torch.Tensor:
        """Squared error of the normalised spectra per site ``[M, G]``."""
        predicted = net.normalised(positions, cells, numbers, batch).index_select(0, sites)
        return (predicted - (targets - net.out_mean) / net.out_scale) ** 2

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        positions, cells, numbers, index, targets, sites, _ = batch
        self.start_step_clock()
        if self.hparams.lr_schedule == "cosine":
            lr = cosine_lr(self.hparams.lr, self.progress_fraction(), self.hparams.lr_min_fraction)
            for group in self.optimizers().param_groups:
                group["lr"] = lr
            self.log("train/lr", lr, batch_size=cells.shape[0])
        noisy = noisy_positions(positions, cells, index, self.hparams.noise_max, self.hparams.clean_fraction)
        loss = self.normalised_error(self.net, noisy, cells, numbers, index, targets, sites).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=cells.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = {"sq": 0.0, "sq_noisy": 0.0, "raw_sq": 0.0, "values": 0, "sites": 0, "rel_atom": 0.0,
                     "rel_structure": 0.0, "structures": 0}  # fmt: skip

    def validation_step(self, batch, batch_idx: int) -> None:
        positions, cells, numbers, index, targets, sites, site_batch = batch
        net = self.ema_net
        acc = self._val
        with torch.no_grad():
            predicted = net(positions, cells, numbers, index).index_select(0, sites)
            acc["sq"] += float(self.normalised_error(net, positions, cells, numbers, index, targets, sites).sum())
            generator = torch.Generator().manual_seed(self.hparams.val_seed + 7919 * batch_idx)
            noisy = noisy_positions(positions, cells, index, VAL_NOISE, 0.0, generator)
            acc["sq_noisy"] += float(self.normalised_error(net, noisy, cells, numbers, index, targets, sites).sum())
        acc["raw_sq"] += float(((predicted - targets) ** 2).sum())
        acc["values"] += targets.numel()
        acc["sites"] += len(sites)
        acc["rel_atom"] += float(((predicted - targets).norm(dim=1) / targets.norm(dim=1).clamp(min=1e-12)).sum())
        n = cells.shape[0]
        counts = torch.bincount(site_batch, minlength=n).clamp(min=1)[:, None].to(targets.dtype)
        mean_pred = targets.new_zeros(n, targets.shape[1]).index_add(0, site_batch, predicted) / counts
        mean_true = targets.new_zeros(n, targets.shape[1]).index_add(0, site_batch, targets) / counts
        acc["rel_structure"] += float(
            ((mean_pred - mean_true).norm(dim=1) / mean_true.norm(dim=1).clamp(min=1e-12)).sum()
        )
        acc["structures"] += n

    def on_validation_epoch_end(self) -> None:
        names = sorted(self._val)  # sums over this process's batches: added over all processes
        totals = self.summed_over_processes(torch.tensor([float(self._val[k]) for k in names], dtype=torch.float64))
        acc = dict(zip(names, totals.tolist(), strict=True))
        if not acc["sites"]:
            return
        values = {
            "val/loss": acc["sq"] / acc["values"],
            f"val/loss_noise{VAL_NOISE:g}A": acc["sq_noisy"] / acc["values"],
            "val/rmse_atom": math.sqrt(acc["raw_sq"] / acc["values"]),
            "val/rel_l2_atom": acc["rel_atom"] / acc["sites"],
            "val/rel_l2_structure": acc["rel_structure"] / acc["structures"],
        }
        baselines = getattr(self, "baselines", None)
        if baselines:
            values["val/rel_l2_atom_over_cn_lookup"] = values["val/rel_l2_atom"] / baselines["cn_lookup_rel_l2_atom"]
            values["val/rel_l2_structure_over_density_mean"] = (
                values["val/rel_l2_structure"] / baselines["density_mean_rel_l2_structure"]
            )
        for name, value in values.items():
            self.log(name, value, prog_bar=name == "val/loss")
        self.last_val = values

    def validation_summary(self) -> dict:
        summary = super().validation_summary()
        if getattr(self, "baselines", None):
            summary["baselines"] = self.baselines
        return summary


def train_surrogate(
    dataset: SpectraDataset,
    out: str | Path,
    *,
    kind: str = "xanes",
    absorber: str | int | None = None,
    grid: Sequence[float] | None = None,
    grid_unit: str | None = None,
    max_time_minutes: float | None = None,
    max_epochs: int | None = None,
    max_steps: int = -1,
    resume: bool = False,
    config: SurrogateConfig | None = None,
    seed: int = 0,
    batch_size: int = 4,
    lr: float = 1e-3,
    ema_decay: float = 0.999,
    val_fraction: float = 0.15,
    val_names: Sequence[str] | None = None,
    noise_max: float = 0.8,
    clean_fraction: float = 0.5,
    progress: bool = True,
    hardware: TrainingHardware | None = None,
    val_every_n_steps: int = 50,
    lr_schedule: str = "constant",
    lr_min_fraction: float = 0.05,
    quantity: str | None = None,
) -> Path:
    """Train a surrogate on ``dataset`` and write the checkpoint ``out`` (EMA weights, grid, absorber, kind).

    Stopping rules as :func:`~specguide.training.prior.train_prior`. ``grid`` defaults to the data's grid,
    else the index 0…G−1 (``grid_unit="index"``; e.g. the a-C XANES set gives no energies). ``absorber``
    defaults to the element of all training sites. Validation structures: ``val_names`` (dataset names) or a
    random ``val_fraction`` of the structures — never part of a structure. ``lr_schedule="cosine"``: the
    learning rate decays from ``lr`` to ``lr_min_fraction * lr`` over this call's ``max_time_minutes`` (wall
    clock) or ``max_steps``, whichever ends first (``"constant"``: no decay). ``hardware``: where it trains
    (:class:`~specguide.training.loop.TrainingHardware`; default: one GPU if torch sees one, else the CPU).
    """
    hardware = TrainingHardware() if hardware is None else hardware
    hardware.trainer_arguments()  # refuses a device this machine cannot use before any work
    out, lightning_ckpt = training_paths(out, "surrogate.pt", resume, max_time_minutes, max_epochs, max_steps)
    site_numbers = {int(a.numbers[s]) for a, s in zip(dataset.structures, dataset.sites, strict=True) for s in s}
    if absorber is None:
        if len(site_numbers) != 1:
            raise ValueError(f"spectra of several elements {sorted(site_numbers)}: choose the absorber")
        absorber = site_numbers.pop()
    absorber_z = absorber if isinstance(absorber, int) else chemical_symbols.index(absorber)
    if grid is None:
        grid = dataset.grid if dataset.grid is not None else np.arange(dataset.n_grid, dtype=float)
        grid_unit = grid_unit or ("index" if dataset.grid is None else ("eV" if kind == "xanes" else "A-1"))
    grid = np.asarray(grid, dtype=float)
    if grid.shape != (dataset.n_grid,):
        raise ValueError(f"grid has {grid.size} points, the spectra {dataset.n_grid}")

    data = data_summary(dataset.structures)
    if config is None:
        config = SurrogateConfig(species=tuple(data["atomic_numbers"]), n_grid=dataset.n_grid)
    if config.n_grid != dataset.n_grid:
        raise ValueError(f"config.n_grid={config.n_grid} but the spectra have {dataset.n_grid} points")
    val_indices = None
    if val_names is not None:
        unknown = sorted(set(val_names) - set(dataset.names))
        if unknown:
            raise ValueError(f"validation names {unknown} are not in the data set")
        val_indices = [dataset.names.index(name) for name in val_names]

    pl.seed_everything(seed, workers=True, verbose=False)
    items = list(zip(dataset.structures, dataset.spectra, dataset.sites, strict=True))
    datamodule = StructureDataModule(
        items, batch_size, val_fraction, seed, make_set=SiteSpectraSet, collate=collate_site_spectra,
        val_indices=val_indices,
    )  # fmt: skip
    module = SurrogateModule(config, lr=lr, ema_decay=ema_decay, noise_max=noise_max, clean_fraction=clean_fraction,
                             lr_schedule=lr_schedule, lr_min_fraction=lr_min_fraction)  # fmt: skip
    module.lr_horizon = {"seconds": None if max_time_minutes is None else 60.0 * max_time_minutes,
                         "steps": max_steps if max_steps > 0 else None}  # fmt: skip
    train_spectra = np.concatenate([dataset.spectra[i] for i in datamodule.train_indices])
    # one scale for all grid points (RMS spread): per-point scales would blow up the empty pre-edge points
    scale = np.full(dataset.n_grid, max(float(np.sqrt((train_spectra.std(0) ** 2).mean())), 1e-8))
    for net in (module.net, module.ema_net):
        net.set_normalisation(torch.as_tensor(train_spectra.mean(0)), torch.as_tensor(scale))
    data.update(
        n_train=len(datamodule.train_indices),
        n_val=len(datamodule.val_indices),
        train_names=[dataset.names[i] for i in datamodule.train_indices],
        val_names=[dataset.names[i] for i in datamodule.val_indices],
        n_sites_train=int(len(train_spectra)),
        sources=sorted({str(Path(s).parent) for s in dataset.sources}),
    )
    if datamodule.val_indices:
        module.baselines = spectrum_baselines(dataset, datamodule.train_indices, datamodule.val_indices)
    extra = {"seed": seed, "batch_size": batch_size, "lr": lr, "optimizer": "RAdam", "ema_decay": ema_decay,
             "noise_max_A": noise_max, "clean_fraction": clean_fraction, "lr_schedule": lr_schedule,
             "lr_min_fraction": lr_min_fraction, "hardware": hardware.record(),
             "loss": "MSE of normalised spectra"}  # fmt: skip

    save = functools.partial(save_surrogate, kind=kind, absorber=absorber_z, grid=torch.as_tensor(grid),
                             grid_unit=grid_unit, quantity=quantity)  # fmt: skip
    exporter = CheckpointExport(out, lightning_ckpt, data, extra, save=save)
    fit_module(module, datamodule, exporter, log_dir=out.parent, log_name=f"{out.stem}_logs",
               max_time_minutes=max_time_minutes, max_epochs=max_epochs, max_steps=max_steps, resume=resume,
               progress=progress, hardware=hardware, gradient_clip_val=None,
               val_every_n_steps=val_every_n_steps)  # fmt: skip
    return out
