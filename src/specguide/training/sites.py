"""Training the site denoiser (plain loop with EMA) and saving site models (:func:`specguide.pretrained.load_site_model`
reads them).

A plain PyTorch loop rather than Lightning: the data set is a few hundred clusters of ~15–40 atoms held in
memory as one tensor set, one CPU process, no validation loop or multi-device logic to share — Lightning
would add only overhead here. The EMA is :class:`specguide.training.loop.EMA` (decay 0.999 with
warm-up), and the EMA weights are what is saved.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from specguide.devices import resolve_device, seeded_generator
from specguide.io import write_atomically
from specguide.models.egnn import EGNNConfig, SiteDenoiser
from specguide.pretrained import SITE_MODEL_FORMAT, SITE_MODEL_VERSION, load_site_model
from specguide.sites.dataset import SiteDataset
from specguide.sites.diffusion import diffusion_loss
from specguide.training.loop import EMA


def spectrum_scale(grid: np.ndarray) -> float:
    """Factor that turns a unit-area spectrum on ``grid`` (eV) into values of order 1 (its mean becomes ~1)."""
    return float(grid[-1] - grid[0])


def collate(data: SiteDataset, idx: np.ndarray, scale: float) -> dict[str, torch.Tensor]:
    """Tensors of the sites ``idx``: x [N,3] Å, numbers [N], batch [N], excited [N], spectrum [B, n_grid]."""
    clusters = [data.clusters[k] for k in idx]
    counts = torch.tensor([len(c) for c in clusters])
    batch = torch.repeat_interleave(torch.arange(len(clusters)), counts)
    excited = torch.zeros(int(counts.sum()), dtype=torch.bool)
    excited[torch.cumsum(counts, 0) - counts] = True
    return dict(
        x=torch.tensor(np.concatenate([c.positions for c in clusters]), dtype=torch.float32),
        numbers=torch.tensor(np.concatenate([c.numbers for c in clusters]), dtype=torch.long),
        batch=batch,
        excited=excited,
        spectrum=torch.tensor(data.spectra[idx] * scale, dtype=torch.float32),
        n_atoms=counts,
    )


def data_species(data: SiteDataset) -> tuple[int, ...]:
    """Atomic numbers in the clusters of ``data``: the absorber's first (every cluster starts with it), then
    ascending; the bundled O K-edge Si–O set gives (8, 14)."""
    absorbers = {int(c.numbers[0]) for c in data.clusters}
    if len(absorbers) != 1:
        raise ValueError(f"clusters of one data set must share their absorbing element; found {sorted(absorbers)}")
    absorber = absorbers.pop()
    others = sorted({int(z) for c in data.clusters for z in c.numbers} - {absorber})
    return (absorber, *others)


def train_site_model(
    data: SiteDataset,
    out: str | Path,
    max_minutes: float = 10.0,
    max_steps: int | None = None,
    batch_size: int = 16,
    lr: float = 5e-4,
    config: EGNNConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    init: str | Path | None = None,
    device: str = "auto",
) -> dict:
    """Train a :class:`SiteDenoiser` on ``data`` for ``max_minutes`` (or ``max_steps``) and save the EMA model
    to ``out`` (``.pt``). ``init``: a checkpoint whose (EMA) weights and config start the run (continued
    training; its log is kept under ``previous``). ``device``: where it trains (``auto``, ``cpu``, ``cuda[:K]``;
    one device: this loop has no multi-device logic). Returns the training log (steps, seconds, final loss)."""
    from rich.progress import Progress

    device = resolve_device(device)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_max = max(len(c) for c in data.clusters)
    if config is None:
        species = data_species(data)
        config = EGNNConfig(species=species, n_spectrum=data.spectra.shape[1], max_atoms=max(40, n_max))
    if n_max > config.max_atoms:
        raise ValueError(f"a cluster has {n_max} atoms > max_atoms {config.max_atoms}; raise EGNNConfig.max_atoms")
    previous = None
    if init is not None:
        model, meta = load_site_model(init, map_location=device)
        model.train()
        config, previous = model.config, meta["log"]
    else:
        model = SiteDenoiser(config).to(device)
    missing = sorted(set(data_species(data)) - set(config.species))
    if missing:
        raise ValueError(
            f"the data's clusters hold atomic numbers {missing} that the model's species {config.species} lack; "
            "train a new model on these data (no --init), or leave those sites out"
        )
    ema = EMA(model, 0.999, warmup=init is None)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-12)
    scale = spectrum_scale(data.grid)
    gen = seeded_generator(seed, device)
    start, step, losses = time.time(), 0, []
    limit = max_minutes * 60.0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("training site model", total=max_steps or limit)
        while True:
            elapsed = time.time() - start
            if (max_steps is not None and step >= max_steps) or elapsed >= limit:
                break
            idx = rng.choice(len(data), size=min(batch_size, len(data)), replace=False)
            b = {key: value.to(device) for key, value in collate(data, idx, scale).items()}
            loss = diffusion_loss(model, b["x"], b["numbers"], b["spectrum"], b["batch"], b["excited"], gen).mean()
            size_loss = torch.nn.functional.cross_entropy(model.n_atoms_logits(b["spectrum"]), b["n_atoms"])
            opt.zero_grad()
            (loss + 0.1 * size_loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema.update(model)
            losses.append(loss.item())
            step += 1
            bar.update(task, completed=step if max_steps else time.time() - start)
    log = dict(
        steps=step,
        seconds=round(time.time() - start, 1),
        loss_first_100=float(np.mean(losses[:100])) if losses else None,
        loss_last_100=float(np.mean(losses[-100:])) if losses else None,
        n_train_sites=len(data),
        materials=sorted(set(data.material.tolist())),
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=str(device),
        previous=previous,
        total_steps=step
        + (previous["total_steps"] if previous and "total_steps" in previous else 0)
        + (previous["steps"] if previous and "total_steps" not in previous else 0),
    )
    save_site_model(out, ema.model, data.grid, scale, log)
    return log


def save_site_model(path: str | Path, model: SiteDenoiser, grid: np.ndarray, scale: float, log: dict) -> None:
    """Save weights, config, spectrum grid (eV) and scale, species and the training log (atomically)."""
    payload = dict(
        format=SITE_MODEL_FORMAT,
        format_version=SITE_MODEL_VERSION,
        state_dict={name: value.detach().cpu() for name, value in model.state_dict().items()},
        config=model.config.to_dict(),
        grid=np.asarray(grid, dtype=np.float64).tolist(),
        spectrum_scale=scale,
        species=list(model.config.species),
        log=log,
    )
    write_atomically(Path(path), lambda tmp: torch.save(payload, tmp))
