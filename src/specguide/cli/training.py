"""`specguide train-prior` and `specguide train-surrogate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    DeviceOption,
    DevicesOption,
    StrategyOption,
    TypesOption,
    app,
    err,
    fail,
    training_hardware,
)
from specguide.io import InputError
from specguide.observables.registry import (
    SURROGATE_KINDS,
)


@app.command("train-prior")
def train_prior_command(
    files: Annotated[list[Path], typer.Argument(help="Training structures: any ASE-readable files (all frames used).")],
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.pt).")],
    max_time: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Stop after this many epochs.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the training state saved next to --out.")] = False,
    init_from: Annotated[
        str | None,
        typer.Option(help="Fine-tune: start from this prior's weights (bundled name or .pt); its network is used."),
    ] = None,
    hidden: Annotated[int, typer.Option(help="Network width.")] = 64,
    layers: Annotated[int, typer.Option(help="Message-passing layers.")] = 4,
    cutoff: Annotated[float, typer.Option(help="Graph cutoff, Å (reach past the second neighbour shell).")] = 3.0,
    k: Annotated[float, typer.Option(help="Noise scale: sigma(t) = k t, Å.")] = 0.8,
    batch_size: Annotated[int, typer.Option(help="Structures per batch.")] = 4,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    t_range: Annotated[
        str | None,
        typer.Option(
            help="LO:HI: draw training diffusion times t from [LO, HI] only, e.g. 0.001:0.5 to fine-tune "
            "the low noise levels (sigma = k t, Å) only. Default: all of (0, 1)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOption = None,
    devices: DevicesOption = 1,
    strategy: StrategyOption = "auto",
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
    types: TypesOption = None,
) -> None:
    """Train a score prior by denoising score matching on MD snapshots (progress, validation per noise level)."""
    from specguide.api import train_prior
    from specguide.io import read_structures, refuse_overwrite
    from specguide.models.score import ScoreNetworkConfig
    from specguide.training.prior import check_t_range

    hardware = training_hardware(device, devices, strategy)
    try:
        if not resume:
            refuse_overwrite(out, force, directory=False)
        structures = [atoms for path in files for atoms in read_structures(path, types=types)]
    except InputError as exc:
        fail(str(exc))
    if max_time is None and max_epochs is None:
        fail("give --max-time MINUTES or --max-epochs N so that training ends")
    extra = {}
    if t_range is not None:
        try:
            extra["t_range"] = check_t_range([float(v) for v in t_range.split(":")])
        except ValueError as exc:
            fail(f"--t-range {t_range!r}: give LO:HI with 0.001 <= LO < HI <= 0.999 ({exc})")
    species = tuple(sorted({int(z) for atoms in structures for z in atoms.numbers}))
    # with --init-from the starting prior's network is used (train_prior takes it when config is None)
    config = (
        None if init_from else ScoreNetworkConfig(species=species, hidden=hidden, n_layers=layers, cutoff=cutoff, k=k)
    )
    try:
        path = train_prior(
            structures,
            out,
            max_time_minutes=max_time,
            max_epochs=max_epochs,
            resume=resume,
            init_from=init_from,
            config=config,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            hardware=hardware,
            **extra,
        )
    except (FileNotFoundError, ValueError) as exc:
        fail(f"--init-from: {exc}" if init_from else str(exc))
    err.print(f"wrote {path}")


@app.command("train-surrogate")
def train_surrogate_command(
    structures: Annotated[
        list[Path], typer.Option(help="Structure files or directories (one structure per file; repeatable).")
    ],
    out: Annotated[Path, typer.Option(help="Surrogate checkpoint to write (.pt).")],
    spectra: Annotated[
        list[Path] | None,
        typer.Option(
            help="Per-atom spectrum files or directories (.txt/.csv/.npz), paired with structures by name; "
            "omit for extxyz files with a per-atom 'spectrum' array."
        ),
    ] = None,
    kind: Annotated[str, typer.Option(help=" or ".join(SURROGATE_KINDS) + ".")] = SURROGATE_KINDS[0],
    absorber: Annotated[
        str | None, typer.Option(help="Absorbing element (default: the one element with spectra).")
    ] = None,
    max_time: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Stop after this many epochs.")] = None,
    noise: Annotated[float, typer.Option(help="Largest coordinate-noise width of the augmentation, Å.")] = 0.8,
    val_fraction: Annotated[float, typer.Option(help="Share of STRUCTURES held out for validation.")] = 0.15,
    hidden: Annotated[int, typer.Option(help="Network width.")] = 64,
    layers: Annotated[int, typer.Option(help="Message-passing layers.")] = 4,
    cutoff: Annotated[float, typer.Option(help="Graph cutoff, Å.")] = 3.0,
    angular_channels: Annotated[
        int, typer.Option(help="Channels of the bond-angle invariants (0: distances only).")
    ] = 16,
    batch_size: Annotated[int, typer.Option(help="Structures per batch.")] = 4,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the training state saved next to --out.")] = False,
    device: DeviceOption = None,
    devices: DevicesOption = 1,
    strategy: StrategyOption = "auto",
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
) -> None:
    """Train a per-atom XANES / EXAFS surrogate on structures with per-atom spectra (validation by structure)."""
    from specguide.api import train_surrogate
    from specguide.datasets.spectra import load_spectra_dataset
    from specguide.io import refuse_overwrite
    from specguide.models.surrogate import SurrogateConfig

    hardware = training_hardware(device, devices, strategy)
    try:
        if kind not in SURROGATE_KINDS:
            raise InputError(f"--kind {kind!r}: choose {' or '.join(SURROGATE_KINDS)}")
        if max_time is None and max_epochs is None:
            raise InputError("give --max-time MINUTES or --max-epochs N so that training ends")
        if not resume:
            refuse_overwrite(out, force, directory=False)
        dataset = load_spectra_dataset(structures, spectra or None, absorber=absorber)
        for message in dataset.scale_outliers():
            err.print(f"warning: {message}", markup=False)
        species = tuple(sorted({int(z) for atoms in dataset.structures for z in atoms.numbers}))
        config = SurrogateConfig(species=species, n_grid=dataset.n_grid, hidden=hidden, n_layers=layers, cutoff=cutoff,
                                 angular_channels=angular_channels)  # fmt: skip
        path = train_surrogate(dataset, out, kind=kind, absorber=absorber, max_time_minutes=max_time,
                               max_epochs=max_epochs, resume=resume, config=config, seed=seed, batch_size=batch_size,
                               lr=lr, val_fraction=val_fraction, noise_max=noise, hardware=hardware)  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    err.print(f"wrote {path}")
    print_surrogate_errors(path)


def print_surrogate_errors(path: Path) -> None:
    """The held-out errors of a surrogate next to the coordination-lookup and density-mean baselines."""
    from specguide.pretrained import load_surrogate

    training = load_surrogate(path)[1].get("training", {})
    last, baselines = training.get("validation", {}), training.get("baselines")
    if not last or not baselines:
        return
    atom_ratio = last["val/rel_l2_atom_over_cn_lookup"]
    structure_ratio = last["val/rel_l2_structure_over_density_mean"]
    err.print(
        f"held-out per-atom rel. L2 {last['val/rel_l2_atom']:.3f} vs coordination lookup "
        f"{baselines['cn_lookup_rel_l2_atom']:.3f} (ratio {atom_ratio:.2f}); "
        f"structure-mean {last['val/rel_l2_structure']:.4f} vs density-group mean "
        f"{baselines['density_mean_rel_l2_structure']:.4f} (ratio {structure_ratio:.2f})",
        markup=False,
    )
