"""Training the structural prior by denoising score matching (Kwon et al. 2024 Sec. 4.4, Algorithm 2).

- loss: ``E || sigma(t) s(x_t, t) + eps ||^2`` with ``x_t = wrap(x_0 + sigma(t) eps)``, ``t ~ U(0.001, 0.999)``
  per structure; reported per Cartesian component (an all-zero score scores 1.0);
- augmentation: every structure of every minibatch is rotated by a uniformly random rotation, positions and
  cell rows together (the same periodic structure, rotated), so the network learns rotation equivariance;
- EMA of the weights (decay 0.999, with the usual ``(1 + n) / (10 + n)`` warm-up so that short runs are not
  dominated by the initial weights); the EMA weights are what is validated and exported;
- validation by structure (no snapshot appears in both sets), loss reported in 5 bins of ``t``.

:func:`train_prior` runs it with the shared loop (:mod:`specguide.training.loop`) and writes a self-describing
checkpoint (our own format, :func:`specguide.pretrained.load_prior` reads it); a Lightning checkpoint
``<out>.last.ckpt`` beside it allows ``resume=True``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import ase
import pytorch_lightning as pl
import torch
from torch import nn

import specguide
from specguide.analysis.structure import chemistry_of
from specguide.io import write_atomically
from specguide.models.schedule import T_MAX, T_MIN, VESchedule
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.pretrained import PRIOR_FORMAT, PRIOR_FORMAT_VERSION, load_prior
from specguide.structure import wrap_positions
from specguide.training.loop import (
    Batch,
    CheckpointExport,
    EMAModule,
    StructureDataModule,
    TrainingHardware,
    data_summary,
    fit_module,
    load_training_state,
    training_paths,
)

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
# loss
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
    components of ``(sigma s + eps)^2``. ``t`` and ``noise`` are drawn (from ``generator``, on its device; without
    one on the device of ``positions``) unless given.
    """
    n_structures = cells.shape[0]
    draw = dict(generator=generator, dtype=positions.dtype,
                device=positions.device if generator is None else generator.device)  # fmt: skip
    if t is None:
        t = t_range[0] + (t_range[1] - t_range[0]) * torch.rand(n_structures, **draw)
    t = t.to(positions)
    if noise is None:
        noise = torch.randn(positions.shape, **draw)
    noise = noise.to(positions)
    sigma = schedule.sigma(t).index_select(0, batch)[:, None]
    noisy = wrap_positions(positions + sigma * noise, cells, batch)
    score = score_model(noisy, cells, numbers, batch, t).to(positions.dtype)
    residual = ((sigma * score + noise) ** 2).mean(dim=-1)  # [N]
    counts = torch.bincount(batch, minlength=n_structures).clamp(min=1).to(residual.dtype)
    per_structure = residual.new_zeros(n_structures).index_add(0, batch, residual) / counts
    return residual.mean(), per_structure, t


# --------------------------------------------------------------------------------------------------
# Lightning module
# --------------------------------------------------------------------------------------------------


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
            # drawn on the CPU whatever the device: every device validates on the same noise
            t = (edges[b] + (edges[b + 1] - edges[b]) * torch.rand(cells.shape[0], generator=generator)).to(positions)
            noise = torch.randn(positions.shape, generator=generator, dtype=positions.dtype).to(positions)
            _, per_structure, _ = dsm_loss(
                self.ema_net, positions, cells, numbers, index, self.schedule, t=t, noise=noise
            )
            self._val_sums[b] += per_structure.sum().double().cpu()
            self._val_counts[b] += cells.shape[0]

    def on_validation_epoch_end(self) -> None:
        sums, counts = self.summed_over_processes(torch.stack([self._val_sums, self._val_counts]))
        if counts.sum() == 0:
            return
        edges = torch.linspace(T_MIN, T_MAX, self.hparams.n_val_bins + 1)
        per_bin = sums / counts.clamp(min=1)
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
    hardware: TrainingHardware | None = None,
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
    fine-tuning run on the small noise levels (σ = k t) only. ``hardware``: where it trains
    (:class:`~specguide.training.loop.TrainingHardware`; default: one GPU if torch sees one, else the CPU).
    """
    structures = list(structures)
    hardware = TrainingHardware() if hardware is None else hardware
    hardware.trainer_arguments()  # refuses a device this machine cannot use before any work
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
    datamodule = StructureDataModule(structures, batch_size=batch_size, val_fraction=val_fraction, seed=seed)
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
        "hardware": hardware.record(),
    }
    if init_from is not None:
        extra["init_from"] = {"prior": str(init_from), "data": start_meta.get("data"),
                              "training": start_meta.get("training")}  # fmt: skip
    chemistry = chemistry_of(structures, source=f"{len(structures)} training structures").to_dict()
    sampling = start_meta.get("sampling") if init_from is not None else None

    save = functools.partial(save_prior, chemistry=chemistry, sampling=sampling)
    exporter = CheckpointExport(out, lightning_ckpt, data, extra, save=save)
    fit_module(module, datamodule, exporter, log_dir=out.parent, log_name=f"{out.stem}_logs",
               max_time_minutes=max_time_minutes, max_epochs=max_epochs, max_steps=max_steps, resume=resume,
               progress=progress, hardware=hardware, gradient_clip_val=gradient_clip_val,
               val_every_n_steps=val_every_n_steps)  # fmt: skip
    return out
