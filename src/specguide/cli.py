"""Command line: a thin layer over the Python API. Bad input → one line naming the file and the fix, exit 2."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from specguide.io import InputError, OutputDirectory
from specguide.observables.registry import (
    DEFAULT_DQ,
    DEFAULT_DR,
    DEFAULT_Q_MAX,
    DEFAULT_Q_MIN,
    DEFAULT_SIGMA,
    KINDS,
    REAL_SPACE_KINDS,
    SURROGATE_KINDS,
    WEIGHTED_KINDS,
    kind_help,
    spec_of,
)

TypesOption = Annotated[
    str | None,
    typer.Option(help="Elements of LAMMPS atom types 1, 2, ... in order (e.g. Si,O), for LAMMPS data and dump files. "
                 "Any structure file may also be named FILE@FORMAT (an ASE format)."),
]  # fmt: skip
PRIOR_HELP = "Bundled prior name (e.g. a-Si: the member trained nearest --density) or checkpoint file."
app = typer.Typer(
    help="specguide: realistic 3D structures of disordered materials from their spectra.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False)


STATE = {"debug": False, "verbose": False}


def _say(label: str, style: str, message: str) -> None:
    """One line to stderr; the message is printed as is (no markup: brackets in element lists survive)."""
    err.print(Text.assemble((label, style), " ", str(message)), soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Bad input, found before any work: print one error line and exit with status 2."""
    _say("error:", "bold red", message)
    raise typer.Exit(code=2)


def failed(exc: BaseException, kept: Path | None = None) -> NoReturn:
    """A failure after the work started: one line (the traceback with --debug) and exit status 1."""
    if STATE["debug"]:
        raise exc
    where = f"; what had finished is in {kept}" if kept is not None and kept.exists() and any(kept.iterdir()) else ""
    _say("failed:", "bold red", f"{exc}{where} (rerun with --debug for the traceback)")
    raise typer.Exit(code=1)


@contextmanager
def result_folder(out: Path, force: bool, resume: bool = False) -> Iterator[tuple[OutputDirectory, Path]]:
    """Check and lock ``out`` before any work, yield ``(output, staging folder)``; the caller writes into the staging
    folder and calls ``output.commit()``. Bad input exits 2, later failures 1, Ctrl-C 130 — each with one line."""
    output = OutputDirectory(out, force, keep_partial=resume)
    try:
        with output as staging:
            yield output, staging
    except (typer.Exit, typer.Abort):
        raise
    except InputError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        kept = output.staging if output.staging.exists() and any(output.staging.iterdir()) else None
        what = f"what had finished is in {kept} (--resume continues from it)" if kept else "nothing was kept"
        _say("interrupted:", "bold yellow", f"nothing was written to {out}; {what}")
        raise typer.Exit(code=130) from None
    except Exception as exc:  # noqa: BLE001 - any failure after the start: one line, exit 1
        failed(exc, output.staging)


Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)  # --kind choices: the rows of the observables table


class Weighting(str, Enum):
    number = "number"
    xray = "xray"
    neutron = "neutron"


def _version(value: bool) -> None:
    if value:
        import specguide

        print(f"specguide {specguide.__version__}")
        raise typer.Exit()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings from specguide itself as one line each; other libraries' only with --verbose."""
    if STATE["verbose"]:
        err.print(Text(warnings.formatwarning(message, category, filename, lineno, line).rstrip()))
    elif "specguide" in str(filename):
        _say("warning:", "bold yellow", str(message))


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a run fails.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the libraries' warnings too.")] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads (default: OMP_NUM_THREADS, else the cores of this process's affinity that "
            "other processes leave idle)."
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """specguide: realistic 3D structures of disordered materials from their spectra."""
    STATE["debug"], STATE["verbose"] = debug, verbose
    warnings.showwarning = _show_warning
    warnings.simplefilter("default")
    from specguide.threads import use_threads

    try:
        chosen, why = use_threads(threads)
    except ValueError as exc:
        fail(str(exc))
    if verbose:
        _say("threads:", "bold cyan", f"{chosen} ({why})")


@app.command()
def spectrum(
    structure: Annotated[Path, typer.Argument(help="Structure file readable by ASE (extxyz, POSCAR, CIF, ...).")],
    kind: Annotated[Kind, typer.Option(help=kind_help())],
    weighting: Annotated[
        Weighting, typer.Option(help=f"Pair weighting of totals ({', '.join(WEIGHTED_KINDS)}).")
    ] = Weighting.number,
    r_max: Annotated[
        float | None, typer.Option(help="Largest pair distance used, Å (≤ half the cell; default min(8, half cell)).")
    ] = None,
    dr: Annotated[float, typer.Option(help="Real-space grid step, Å.")] = DEFAULT_DR,
    sigma: Annotated[float, typer.Option(help="Gaussian smoothing of pair distances, Å.")] = DEFAULT_SIGMA,
    q_min: Annotated[
        float, typer.Option(help="Smallest Q, Å⁻¹ (below ~1 Å⁻¹ the finite r-max window dominates).")
    ] = DEFAULT_Q_MIN,
    q_max: Annotated[float, typer.Option(help="Largest Q, Å⁻¹.")] = DEFAULT_Q_MAX,
    dq: Annotated[float, typer.Option(help="Q grid step, Å⁻¹.")] = DEFAULT_DQ,
    adf_cutoff: Annotated[
        float | None, typer.Option(help="Bond cutoff for bond angles, Å (default 1.3 × covalent radii).")
    ] = None,
    surrogate: Annotated[
        Path | None, typer.Option(help="Surrogate checkpoint (train-surrogate) for --kind xanes / exafs.")
    ] = None,
    per_atom: Annotated[
        bool, typer.Option(help="xanes/exafs: one column per absorbing atom instead of the mean.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Two-column text file to write (default: print).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save a plot (PNG).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
    types: TypesOption = None,
) -> None:
    """Compute a spectrum of a structure file (averaged over its frames) and write it as two columns."""
    from specguide.api import compute_spectrum
    from specguide.io import refuse_overwrite, write_two_columns

    try:
        for target in (out, plot):
            if target is not None:
                refuse_overwrite(target, force, directory=False)
        if spec_of(kind.value).surrogate:
            _surrogate_spectrum(structure, kind.value, surrogate, per_atom, out, types)
            return
        options = dict(r_max=r_max, dr=dr, sigma=sigma, q_min=q_min, q_max=q_max, dq=dq, adf_cutoff=adf_cutoff,
                       types=types)  # fmt: skip
        x, y, observable = compute_spectrum(structure, kind.value, weighting=weighting.value, **options)
    except InputError as exc:
        fail(str(exc))
    header = f"{observable.header()}\nsource: {structure}"
    if out is None:
        print("# " + header.replace("\n", "\n# "))
        for xi, yi in zip(x, y):
            print(f"{xi:.6g} {yi:.8g}")
    else:
        write_two_columns(out, x, y, header)
        err.print(f"wrote {out}")
    if plot is not None:
        from specguide.plotting import plot_spectrum

        plot_spectrum(plot, x, y, observable, title=structure.name)
        err.print(f"wrote {plot}")


def _surrogate_spectrum(
    structure: Path, kind: str, surrogate: Path | None, per_atom: bool, out: Path | None, types: str | None = None
) -> None:
    import numpy as np

    from specguide.api import surrogate_spectrum
    from specguide.io import write_atomically

    if surrogate is None:
        raise InputError(f"--kind {kind} is computed by a learned surrogate: add --surrogate CKPT (train-surrogate)")
    try:
        x, spectra, observable, labels = surrogate_spectrum(structure, surrogate, kind, per_atom, types)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    header = f"{observable.header()}\nsource: {structure}"
    if per_atom:
        header += "\ncolumns after the first: " + " ".join(labels)
    table = np.column_stack([x, spectra.T])
    if out is None:
        print("# " + header.replace("\n", "\n# "))
        for row in table:
            print(f"{row[0]:.6g} " + " ".join(f"{v:.8g}" for v in row[1:]))
    else:
        write_atomically(out, lambda tmp: np.savetxt(tmp, table, fmt="%.8g", header=header))
        err.print(f"wrote {out}")


@app.command()
def example(
    name: Annotated[
        str, typer.Argument(help="Bundled MD data set, e.g. a-Si (held-out replica at 2.5 g/cm³) or a-Si_1.5.")
    ],
    out: Annotated[Path | None, typer.Option(help="extxyz file to write (default: NAME.extxyz).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a held-out replica of a bundled MD data set as extxyz and print its path."""
    from specguide.io import refuse_overwrite, write_extxyz
    from specguide.pretrained import list_md_datasets, load_md_dataset

    dataset = {"a-Si": "a-Si_2.5", "a-C": "a-C_2.0", "a-SiO2": "a-SiO2_2.2"}.get(name, name)
    if dataset not in list_md_datasets():
        fail(f"no bundled data set {name!r}; choose one of {', '.join(list_md_datasets())}")
    target = out or Path(f"{name}.extxyz")
    try:
        refuse_overwrite(target, force, directory=False)
    except InputError as exc:
        fail(str(exc))
    held_out = load_md_dataset(dataset, split="test") or load_md_dataset(dataset)
    write_extxyz(target, held_out[0])
    print(target)


md_app = typer.Typer(help="Molecular dynamics: make training data for your own material.", no_args_is_help=True)
app.add_typer(md_app, name="md")


@md_app.command("melt-quench")
def melt_quench_command(
    density: Annotated[float, typer.Option(help="Density, g/cm³ (fixed during the run).")],
    atoms: Annotated[int, typer.Option(help="Atoms per cell.")],
    out: Annotated[Path, typer.Option(help="Output directory (structures.extxyz, config.json).")],
    element: Annotated[str | None, typer.Option(help="Single element: Si or C.")] = None,
    composition: Annotated[str | None, typer.Option(help="Formula, e.g. SiO2 or Cu64Zr36.")] = None,
    replicas: Annotated[int, typer.Option(help="Independent melt-quench runs.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → same structures).")] = 0,
    potential: Annotated[str | None, typer.Option(help="Potential key or file (default by species).")] = None,
    melt_time: Annotated[float, typer.Option(help="Melt time at 5000 K, ps.")] = 50.0,
    quench_rate: Annotated[float, typer.Option(help="Quench rate, K/ps.")] = 100.0,
    workers: Annotated[int, typer.Option(help="Parallel processes (one replica each).")] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run into the same --out: finished replicas are kept.")
    ] = False,
) -> None:
    """Melt-quench amorphous structures with LAMMPS (Tersoff Si/C, Vashishta Si-O, Mendelev Cu-Zr)."""
    import ase.io

    from specguide.chemistry import coordination_fractions
    from specguide.io import refuse_overwrite, write_atomically, write_extxyz, write_json
    from specguide.simulate.lammps import (
        MeltQuenchProtocol,
        melt_quench_replicas,
        resolve_potential,
        stoichiometric_counts,
    )

    if (element is None) == (composition is None):
        fail("give exactly one of --element or --composition")
    try:
        refuse_overwrite(out, force, directory=True)
        if atoms < 1 or replicas < 1 or workers < 1 or not density > 0:
            raise InputError("--atoms, --replicas, --workers and --density must be positive")
        protocol = MeltQuenchProtocol(melt_time=melt_time, quench_rate=quench_rate)
        counts = stoichiometric_counts(element, composition, atoms)
        resolve_potential(sorted(counts), potential)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    settings = dict(element=element, composition=composition, density_g_cm3=density, n_atoms=atoms, replicas=replicas,
                    seed=seed, potential=potential, protocol=protocol.to_dict())  # fmt: skip
    with result_folder(out, force, resume=resume) as (output, staging):
        folder = staging / "replicas"
        done = {}
        if resume and (staging / "settings.json").is_file():
            if json.loads((staging / "settings.json").read_text()) != json.loads(json.dumps(settings)):
                raise InputError(f"{output.staging}: was started with other settings; rerun them or drop --resume")
            done = {int(p.stem.split("_")[1]): ase.io.read(p) for p in sorted(folder.glob("replica_*.extxyz"))}
        folder.mkdir(exist_ok=True)
        write_json(staging / "settings.json", settings)
        each = protocol.melt_time + protocol.quench_time + protocol.anneal_time
        bar = _Bar(f"melt-quench ({atoms} atoms, {each:g} ps each)", replicas, len(done))

        def save(index, frame) -> None:
            write_atomically(folder / f"replica_{index:03d}.extxyz", lambda tmp: write_extxyz(tmp, frame))
            bar.advance()

        try:
            frames = melt_quench_replicas(element, composition, density_g_cm3=density, n_atoms=atoms,
                                          n_replicas=replicas, seed=seed, protocol=protocol, potential=potential,
                                          workers=workers, done=done, on_replica=save)  # fmt: skip
        finally:
            bar.close()
        write_atomically(staging / "structures.extxyz", lambda tmp: write_extxyz(tmp, frames))
        config = dict(settings, potential=frames[0].info.get("potential"), coordination=coordination_fractions(frames),
                      resumed_replicas=sorted(done))  # fmt: skip
        write_json(staging / "config.json", config)
        shutil.rmtree(folder)
        (staging / "settings.json").unlink()
        output.commit()
    err.print(f"wrote {len(frames)} structures to {out / 'structures.extxyz'}")


ResumeOption = Annotated[
    bool,
    typer.Option(help="Continue an interrupted run into the same --out (same settings): it picks up where it stopped "
                 "and gives the same structures as an uninterrupted run."),
]  # fmt: skip


def _resumable(staging: Path, settings: dict, resume: bool):
    """The sampler checkpoint of a run in ``staging``; with ``resume`` the saved settings must match ``settings``."""
    from specguide.diffusion.sampler import SamplerCheckpoint
    from specguide.io import write_json

    saved = staging / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if resume and saved.is_file() and json.loads(saved.read_text()) != settings:
        raise InputError(f"{staging}: the interrupted run had other settings; rerun with those or drop --resume")
    write_json(saved, settings)
    return SamplerCheckpoint(staging / "checkpoints")


def _finish_resumable(staging: Path) -> None:
    """Remove what only a resumed run needs before the result is published."""
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    (staging / "settings.json").unlink(missing_ok=True)


class _Bar:
    """A rich progress bar over a count of finished items, with elapsed time (for work that reports per item)."""

    def __init__(self, label: str, total: int, completed: int = 0):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err)  # fmt: skip
        self.task = self.progress.add_task(label, total=total, completed=completed)
        self.progress.start()

    def advance(self) -> None:
        self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


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
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
    types: TypesOption = None,
) -> None:
    """Train a score prior by denoising score matching on MD snapshots (progress, validation per noise level)."""
    from specguide.io import read_structures, refuse_overwrite
    from specguide.models.score import ScoreNetworkConfig
    from specguide.training.prior import check_t_range, train_prior

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
    ] = 0,
    batch_size: Annotated[int, typer.Option(help="Structures per batch.")] = 4,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the training state saved next to --out.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
) -> None:
    """Train a per-atom XANES / EXAFS surrogate on structures with per-atom spectra (validation by structure)."""
    from specguide.datasets.spectra import load_spectra_dataset
    from specguide.io import refuse_overwrite
    from specguide.models.surrogate import SurrogateConfig
    from specguide.training.surrogate import train_surrogate

    try:
        if kind not in SURROGATE_KINDS:
            raise InputError(f"--kind {kind!r}: choose {' or '.join(SURROGATE_KINDS)}")
        if max_time is None and max_epochs is None:
            raise InputError("give --max-time MINUTES or --max-epochs N so that training ends")
        if not resume:
            refuse_overwrite(out, force, directory=False)
        dataset = load_spectra_dataset(structures, spectra or None, absorber=absorber)
        species = tuple(sorted({int(z) for atoms in dataset.structures for z in atoms.numbers}))
        config = SurrogateConfig(species=species, n_grid=dataset.n_grid, hidden=hidden, n_layers=layers, cutoff=cutoff,
                                 angular_channels=angular_channels)  # fmt: skip
        path = train_surrogate(dataset, out, kind=kind, absorber=absorber, max_time_minutes=max_time,
                               max_epochs=max_epochs, resume=resume, config=config, seed=seed, batch_size=batch_size,
                               lr=lr, val_fraction=val_fraction, noise_max=noise)  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    err.print(f"wrote {path}")
    _print_surrogate_errors(path)


def _print_surrogate_errors(path: Path) -> None:
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


class RestartMode(str, Enum):
    replica = "replica"
    local = "local"


class Preset(str, Enum):
    quality = "quality"
    fast = "fast"


PresetOption = Annotated[
    Preset,
    typer.Option(help="quality: the corrector steps and local restarts the prior recommends (its model card); "
                 "fast: plain denoising, no restarts. --corrector-steps/--restarts/--restart-mode override."),
]  # fmt: skip
CorrectorOption = Annotated[
    int | None, typer.Option(help="Langevin corrector steps after each denoising step (default: --preset).")
]
RestartsOption = Annotated[
    int | None, typer.Option(help="Restart cycles for atoms with coordination defects (default: --preset).")
]
CompositionOption = Annotated[
    str | None,
    typer.Option(help="Formula (SiO2, Cu64Zr36) or SYMBOL:AMOUNT pairs (Si:1,O:2); default: the prior's training "
                 "composition."),
]  # fmt: skip


RestartModeOption = Annotated[
    RestartMode | None,
    typer.Option(help="replica: re-noise whole replicas; local: defects + bonded neighbours, then a joint pass "
                 "(default: --preset)."),
]  # fmt: skip
CnRangeOption = Annotated[
    list[str] | None,
    typer.Option(help="With restarts: the coordination numbers an element may have, SYMBOL:LO-HI, repeatable; "
                 "e.g. Si:4-4 for a four-fold network. Default: re-sample the classes that exceed the prior's "
                 "training data."),
]  # fmt: skip


def parse_cn_ranges(texts: list[str] | None) -> dict[str, tuple[int, int]] | None:
    """``["Si:4-4"]`` → ``{"Si": (4, 4)}`` (``InputError`` with the fix for anything malformed)."""
    from ase.data import atomic_numbers

    if not texts:
        return None
    ranges = {}
    for text in texts:
        symbol, _, span = text.partition(":")
        try:
            lo, hi = (int(v) for v in span.split("-"))
        except ValueError:
            raise InputError(f"--cn-range {text!r}: write SYMBOL:LO-HI, e.g. Si:4-4") from None
        if symbol not in atomic_numbers or not 0 <= lo <= hi:
            raise InputError(f"--cn-range {text!r}: need a known element symbol and 0 <= LO <= HI, e.g. Si:3-4")
        ranges[symbol] = (lo, hi)
    return ranges


ConfigOption = Annotated[
    Path | None,
    typer.Option(help="Rerun a result: the config.json it wrote (its settings replace the sampling options; same "
                 "seed, same structures)."),
]  # fmt: skip


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    prior: Annotated[str | None, typer.Option(help=PRIOR_HELP)] = None,
    density: Annotated[float | None, typer.Option(help="Density, g/cm³.")] = None,
    atoms: Annotated[int | None, typer.Option(help="Atoms per structure.")] = None,
    cell: Annotated[
        str | None, typer.Option(help="Cell shape 'a,b,c' (Å, orthorhombic), scaled to the density; default cubic.")
    ] = None,
    replicas: Annotated[int, typer.Option(help="Structures generated together in one batch.")] = 1,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → identical output).")] = 0,
    corrector_steps: CorrectorOption = None,
    restarts: RestartsOption = None,
    restart_mode: RestartModeOption = None,
    cn_range: CnRangeOption = None,
    preset: PresetOption = Preset.quality,
    composition: CompositionOption = None,
    init: Annotated[
        Path | None, typer.Option(help="Start from this structure file (crystal seed, liquid), noised to --t-start.")
    ] = None,
    t_start: Annotated[
        float | None, typer.Option(help="Starting time in (0, 1) (default 0.999, or 0.6 with --init).")
    ] = None,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: ResumeOption = False,
    types: TypesOption = None,
) -> None:
    """Generate structures from a prior: DIR/structures.extxyz, config.json (every parameter), summary.json."""
    from specguide.analysis.summary import summarize
    from specguide.api import read_run_config
    from specguide.chemistry import parse_composition
    from specguide.diffusion.sampler import GenerateConfig
    from specguide.diffusion.sampler import generate as generate_structures
    from specguide.io import read_structures, refuse_overwrite, write_results

    try:
        refuse_overwrite(out, force, directory=True)
        if config is not None:
            prior, request, init_text = read_run_config(config, "generate")
            init = None if init_text == "random" else Path(init_text)
        else:
            if prior is None or density is None or atoms is None:
                raise InputError("give --prior, --density and --atoms (or --config of an earlier result)")
            fractions = None if composition is None else parse_composition(composition)
            shape = None if cell is None else [float(v) for v in cell.split(",")]
            if shape is not None and (len(shape) != 3 or min(shape) <= 0):
                raise InputError(f"--cell {cell!r}: give three positive lengths 'a,b,c' in Å")
            if atoms < 1 or replicas < 1 or steps < 1:
                raise InputError("--atoms, --replicas and --steps must be positive")
            mode = None if restart_mode is None else restart_mode.value
            request = GenerateConfig(density_g_cm3=density, n_atoms=atoms, n_replicas=replicas, steps=steps, seed=seed,
                                     cell=shape, t_start=t_start, preset=preset.value, composition=fractions,
                                     n_restarts=restarts, restart_mode=mode, cn_range=parse_cn_ranges(cn_range),
                                     corrector_steps=corrector_steps)  # fmt: skip
        start = "random" if init is None else read_structures(init, types=types)
    except ValueError as exc:
        fail(str(exc))
    settings = {"command": "generate", "prior": prior, "init": str(init), **request.to_dict()}
    with result_folder(out, force, resume=resume) as (output, staging):
        checkpoint = _resumable(staging, settings, resume)
        try:
            run = generate_structures(prior, request, init=start, progress=True, checkpoint=checkpoint)
        except (FileNotFoundError, ValueError) as exc:  # found before sampling: bad input
            raise InputError(str(exc)) from None
        record = {**run.config, "init": str(init) if init else "random", "report": run.report}
        summary = summarize(run.structures, cn_range=request.cn_range, chemistry=run.chemistry,
                            density_g_cm3=request.density_g_cm3)  # fmt: skip
        _finish_resumable(staging)
        write_results(staging, run.structures, record, summary, force=True)
        output.commit()
    err.print(f"wrote {len(run.structures)} structures to {out / 'structures.extxyz'}")
    _print_structure(summary)


class GuidanceForm(str, Enum):
    x0 = "x0"
    dps = "dps"


class GuidanceStep(str, Enum):
    normalized = "normalized"
    weight = "weight"


class Schedule(str, Enum):
    two_stage = "two-stage"
    guided = "guided"


@app.command()
def invert(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    prior: Annotated[str | None, typer.Option(help=PRIOR_HELP)] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            help=f"KIND:FILE[:key=value,...], repeatable. KIND: {', '.join(KINDS)} "
            f"({' and '.join(SURROGATE_KINDS)} with --surrogate). Keys: units (A|nm, A-1|nm-1, deg|rad), weighting "
            "(number|xray|neutron), weight, range (LO-HI), scale/offset (fit|fixed), sigma (Å), columns (1-based "
            "x,y[,err]), cutoff (Å, adf), surrogate (CKPT), core (weight below the first-neighbour onset of "
            f"{'/'.join(REAL_SPACE_KINDS)}, e.g. 10)."
        ),
    ] = None,
    density: Annotated[
        str | None,
        typer.Option(help="g/cm³: one value, a scan LO:HI:N that picks the best, or auto (scan the prior's range)."),
    ] = None,
    atoms: Annotated[int | None, typer.Option(help="Atoms per structure.")] = None,
    replicas: Annotated[int, typer.Option(help="Structures generated together in one batch.")] = 4,
    steps: Annotated[int, typer.Option(help="Denoising steps per pass.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → identical output).")] = 0,
    strength: Annotated[float, typer.Option(help="Guidance strength: ξ (normalized step) or w (weight step).")] = 30.0,
    guidance: Annotated[
        GuidanceForm, typer.Option(help="x0: gradient at the clean estimate (GLASS); dps: through the network (Kwon).")
    ] = GuidanceForm.x0,
    step: Annotated[
        GuidanceStep, typer.Option(help="normalized: ξ/‖y−F‖ step; weight: fixed w.")
    ] = GuidanceStep.normalized,
    schedule: Annotated[
        Schedule, typer.Option(help="two-stage: unconditional pass, then guided from --t-guide; guided: one pass.")
    ] = Schedule.two_stage,
    t_guide: Annotated[float, typer.Option(help="Guidance acts for t ≤ t_guide (re-noising level of stage 2).")] = 0.6,
    init: Annotated[
        str, typer.Option(help="random, crystal (the element's reference crystal), or a structure file (seed/liquid).")
    ] = "random",
    corrector_steps: CorrectorOption = None,
    restarts: RestartsOption = None,
    restart_mode: RestartModeOption = None,
    cn_range: CnRangeOption = None,
    preset: PresetOption = Preset.quality,
    composition: CompositionOption = None,
    scan_replicas: Annotated[int, typer.Option(help="Replicas per density during a density scan.")] = 2,
    surrogate: Annotated[
        Path | None, typer.Option(help="Surrogate checkpoint for xanes / exafs targets (train-surrogate).")
    ] = None,
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: ResumeOption = False,
    types: TypesOption = None,
) -> None:
    """Invert measured spectra into an ensemble of structures (structures.extxyz, summary, config, report.png)."""
    from specguide.api import read_run_config
    from specguide.chemistry import parse_composition
    from specguide.diffusion.guidance import GuidanceConfig
    from specguide.diffusion.inversion import InvertConfig, auto_densities, parse_densities, write_inversion
    from specguide.diffusion.inversion import invert as run_inversion
    from specguide.diffusion.sampler import GenerateConfig
    from specguide.io import read_structures, refuse_overwrite
    from specguide.observables.measured import parse_target_spec

    try:
        refuse_overwrite(out, force, directory=True)
        if config is not None:
            prior, request, _ = read_run_config(config, "invert")
        else:
            if prior is None or not target or density is None or atoms is None:
                raise InputError("give --prior, --target, --density and --atoms (or --config of an earlier result)")
            if atoms < 1 or replicas < 1 or steps < 1:
                raise InputError("--atoms, --replicas and --steps must be positive")
            fractions = None if composition is None else parse_composition(composition)
            sampling = GenerateConfig(n_atoms=atoms, n_replicas=replicas, steps=steps, seed=seed, preset=preset.value,
                                      corrector_steps=corrector_steps, n_restarts=restarts,
                                      restart_mode=None if restart_mode is None else restart_mode.value,
                                      cn_range=parse_cn_ranges(cn_range), composition=fractions)  # fmt: skip
            guided = GuidanceConfig(strength=strength, form=guidance.value, step=step.value, schedule=schedule.value,
                                    t_guide=t_guide)  # fmt: skip
            request = InvertConfig(targets=list(target), density_g_cm3=density, sampling=sampling, guidance=guided,
                                   init=init, scan_replicas=scan_replicas,
                                   surrogate=None if surrogate is None else str(surrogate))  # fmt: skip
        density_text = request.density_g_cm3
        if isinstance(density_text, str) and density_text.strip().lower() == "auto":
            auto_densities(prior)
        else:
            parse_densities(density_text)
        for text in request.targets:
            parse_target_spec(text)
        start = request.init if request.init in ("random", "crystal") else read_structures(Path(request.init),
                                                                                            types=types)  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))

    def note(message: str) -> None:
        _say("note:", "bold cyan", message)

    settings = {"command": "invert", "prior": prior, **request.to_dict()}
    with result_folder(out, force, resume=resume) as (output, staging):
        checkpoint = _resumable(staging, settings, resume)
        try:
            result = run_inversion(prior, None, request, init=start, progress=True, notify=note, checkpoint=checkpoint)
        except (ValueError, FileNotFoundError) as exc:  # targets and options are read before any sampling
            raise InputError(str(exc)) from None
        _finish_resumable(staging)
        write_inversion(staging, result, force=True)
        output.commit()
    losses = ", ".join(f"{label} {v['ensemble_mean_spectrum']:.3g}" for label, v in result.summary["losses"].items())
    err.print(f"wrote {len(result.structures)} structures to {out / 'structures.extxyz'}; look at {out / 'report.png'}")
    err.print(f"loss of the ensemble-mean spectrum: {losses}")
    _print_structure(result.summary)
    wrong = result.summary.get("shorter_than_reference")
    if wrong:
        _say("warning:", "bold yellow", f"pairs closer than the prior's training data ever have: {wrong}")


def _print_structure(summary: dict) -> None:
    """One line per species: the two most common coordination numbers (ensemble mean ± spread over structures)."""
    for symbol, entry in summary.get("coordination", {}).items():
        top = sorted(entry["fractions"].items(), key=lambda kv: -kv[1])[:3]
        parts = [f"CN{k} {100 * v:.1f} ± {100 * entry.get('spread', {}).get(k, 0.0):.1f} %" for k, v in top]
        err.print(f"{symbol}: " + ", ".join(parts), markup=False)
    hybrid = summary.get("carbon_hybridization")
    if hybrid:
        parts = [
            f"{name} {100 * hybrid[name]['mean']:.1f} ± {100 * hybrid[name]['std']:.1f} %"
            for name in ("sp", "sp2", "sp3")
        ]
        err.print("carbon: " + ", ".join(parts) + " (mean ± spread over structures)", markup=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("specguide-demo"),
    replicas: Annotated[int, typer.Option(help="Structures generated together.")] = 4,
    steps: Annotated[int, typer.Option(help="Denoising steps per pass.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
) -> None:
    """Invert the g(r) of a held-out a-Si MD replica with the bundled prior (a few minutes on 2 CPU cores)."""
    from specguide.demo import run_demo
    from specguide.io import refuse_overwrite

    try:
        refuse_overwrite(out, force, directory=True)
        if replicas < 1 or steps < 1:
            raise InputError("--replicas and --steps must be positive")
    except InputError as exc:
        fail(str(exc))
    with result_folder(out, force) as (output, staging):
        result, comparison = run_demo(staging, n_replicas=replicas, steps=steps, seed=seed, force=True)
        output.commit()
    loss = next(iter(result.summary["losses"].values()))["ensemble_mean_spectrum"]
    err.print(f"\n[bold]specguide demo[/] — results in {out}/")
    err.print("  report.png         target g(r) vs the generated ensemble, g(r), bond angles, coordination")
    err.print(f"  structures.extxyz  {len(result.structures)} generated a-Si structures (open with ase gui or OVITO)")
    err.print("  summary.json       losses, coordination, shortest distance; config.json: every setting and the seed")
    err.print(f"  target_gr.dat      the target (g(r) of {out}/reference.extxyz, a held-out MD replica)")
    err.print(
        f"four-fold Si: {comparison['four_fold_pct_generated']:.1f} % generated vs "
        f"{comparison['four_fold_pct_reference']:.1f} % in the MD replica; g(r) loss {loss:.2e}; "
        f"shortest pair {result.summary['min_distance']:.2f} Å",
        markup=False,
    )


sites_app = typer.Typer(help="Site-specific generation: the 3-shell cluster around an absorber from its spectrum.")
app.add_typer(sites_app, name="sites")


def _split_materials(text: str | None) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()] if text else []


@sites_app.command("train")
def sites_train_command(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.pt).")],
    data: Annotated[
        Path | None, typer.Option(help="Site data set (.npz; default: the bundled O K-edge Si–O set).")
    ] = None,
    test_materials: Annotated[
        str | None, typer.Option(help="Comma-separated materials held out of training.")
    ] = "alpha-cristobalite,a-SiO2_2.2",
    kinds: Annotated[str, typer.Option(help="Comma-separated site kinds to train on.")] = "crystal,perturbed",
    max_time: Annotated[float, typer.Option(help="Stop after this many minutes.")] = 10.0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    hidden: Annotated[int, typer.Option(help="EGNN width.")] = 64,
    layers: Annotated[int, typer.Option(help="EGNN layers.")] = 4,
    prediction: Annotated[
        str, typer.Option(help="What the network predicts: x0 (clean cluster, Min-SNR loss) or eps (noise).")
    ] = "x0",
    batch_size: Annotated[int, typer.Option(help="Clusters per batch.")] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = 5e-4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    init: Annotated[Path | None, typer.Option(help="Continue from this checkpoint's weights and sizes.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
) -> None:
    """Train the EGNN site denoiser (EMA weights saved) on a site data set, split by material."""
    from specguide.io import refuse_overwrite
    from specguide.models.egnn import EGNNConfig
    from specguide.sites.dataset import load_site_dataset, split_by_material
    from specguide.training.sites import train_site_model

    try:
        refuse_overwrite(out, force, directory=False)
        dataset = load_site_dataset(data)
        train, _ = split_by_material(dataset, _split_materials(test_materials), _split_materials(kinds))
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if len(train) == 0:
        fail("no training sites left after the split; check --test-materials and --kinds")
    n_max = max(len(c) for c in train.clusters)
    try:
        config = EGNNConfig(
            n_spectrum=train.spectra.shape[1],
            hidden=hidden,
            layers=layers,
            max_atoms=max(40, n_max),
            prediction=prediction,
        )
    except ValueError as exc:
        fail(f"--prediction: {exc}")
    log = train_site_model(
        train,
        out,
        max_minutes=max_time,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        config=config,
        seed=seed,
        init=init,
    )
    err.print(f"trained {log['steps']} steps in {log['seconds']} s on {log['n_train_sites']} sites → {out}")


@sites_app.command("generate")
def sites_generate_command(
    spectrum: Annotated[Path, typer.Option(help="Two columns: energy relative to the edge (eV), intensity.")],
    out: Annotated[Path, typer.Option(help="Output directory (clusters.extxyz, summary.json, config.json).")],
    model: Annotated[str, typer.Option(help="Bundled model name or checkpoint (.pt).")] = "O-K_SiO",
    samples: Annotated[int, typer.Option(help="Clusters to generate.")] = 8,
    atoms: Annotated[int | None, typer.Option(help="Atoms per cluster (default: predicted from the spectrum).")] = None,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
) -> None:
    """Generate the 3-shell cluster (species + coordinates, excited atom at the origin) from a spectrum."""
    from specguide.io import refuse_overwrite
    from specguide.sites.api import generate_sites, write_generation

    if samples < 1 or steps < 1 or (atoms is not None and atoms < 2):
        fail("--samples and --steps must be ≥ 1 and --atoms ≥ 2")
    try:
        refuse_overwrite(out, force, directory=True)
    except InputError as exc:
        fail(str(exc))
    config = dict(model=model, spectrum=str(spectrum), samples=samples, atoms=atoms, steps=steps, seed=seed)
    with result_folder(out, force) as (output, staging):
        try:
            clusters, summary = generate_sites(model, spectrum, samples=samples, n_atoms=atoms, steps=steps, seed=seed)
        except (FileNotFoundError, ValueError) as exc:  # the model and the spectrum are read before sampling
            raise InputError(str(exc)) from None
        write_generation(staging, clusters, summary, config, force=True)
        output.commit()
    err.print(
        f"wrote {len(clusters)} clusters to {out / 'clusters.extxyz'}, most representative first "
        f"(sample {summary['selected_sample']}: highest mean SOAP similarity to the others)"
    )


@sites_app.command("evaluate")
def sites_evaluate_command(
    out: Annotated[Path, typer.Option(help="JSON file with per-site and mean metrics.")],
    model: Annotated[str, typer.Option(help="Bundled model name or checkpoint (.pt).")] = "O-K_SiO",
    data: Annotated[Path | None, typer.Option(help="Site data set (.npz; default: bundled).")] = None,
    test_materials: Annotated[str, typer.Option(help="Comma-separated materials to test on.")] = "alpha-cristobalite",
    samples: Annotated[
        int, typer.Option(help="Samples per site (the first, the consensus pick and the best are scored).")
    ] = 8,
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 100,
    max_sites: Annotated[int | None, typer.Option(help="Score at most this many test sites.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output file.")] = False,
) -> None:
    """Aligned RMSD, CN error per shell, species accuracy and SOAP vs template matching on held-out sites."""
    import numpy as np

    from specguide.io import refuse_overwrite, write_json
    from specguide.sites.api import evaluate_sites
    from specguide.sites.dataset import load_site_dataset, split_by_material

    try:
        refuse_overwrite(out, force, directory=False)
        dataset = load_site_dataset(data)
        train, test = split_by_material(dataset, _split_materials(test_materials), ["crystal", "perturbed"])
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if max_sites is not None:
        test = test.subset(np.arange(len(test)) < max_sites)
    try:
        result = evaluate_sites(model, test, train, samples=samples, steps=steps, seed=seed)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    result["config"] = dict(model=model, data=str(data), test_materials=test_materials, max_sites=max_sites)
    write_json(out, result)
    s = result["summary"]
    m, t = s["model"], s["template"]
    err.print(
        f"{s['n_sites']} sites: shell-1 RMSD {m['rmsd_shell1']:.3f} Å (template {t['rmsd_shell1']:.3f}), "
        f"species accuracy {m['species_accuracy']:.3f}; model beats template on "
        f"{100 * s['model_consensus_beats_template']:.0f} % (consensus pick), "
        f"{100 * s['model_beats_template']:.0f} % (first sample)"
    )


@app.command()
def analyze(
    files: Annotated[list[Path], typer.Argument(help="Structures to analyse: any ASE-readable files (all frames).")],
    out: Annotated[Path, typer.Option(help="Output directory (analysis.json, analysis.png, config.json).")],
    reference: Annotated[
        list[Path] | None,
        typer.Option(help="Reference ensemble (e.g. MD replicas), repeatable: compared in every metric."),
    ] = None,
    cutoff: Annotated[
        list[str] | None,
        typer.Option(help="Bond cutoff PAIR=Å, repeatable (e.g. Si-Si=2.85); default: first RDF minimum."),
    ] = None,
    max_ring: Annotated[int, typer.Option(help="Largest ring size searched.")] = 10,
    energy: Annotated[bool, typer.Option(help="Energy per atom with the shipped classical potential (LAMMPS).")] = True,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    types: TypesOption = None,
) -> None:
    """Coordination, angles, dihedrals, rings, q4/q6, Voronoi, crystallinity, energy; Delta_ED vs a reference."""
    from specguide.analysis.report import analyze as run_analysis
    from specguide.analysis.report import write_analysis
    from specguide.io import read_structures, refuse_overwrite

    try:
        refuse_overwrite(out, force, directory=True)
        structures = [atoms for path in files for atoms in read_structures(path, types=types)]
        references = [atoms for path in reference or [] for atoms in read_structures(path, types=types)]
        ours = sorted({s for atoms in structures for s in atoms.get_chemical_symbols()})
        theirs = sorted({s for atoms in references for s in atoms.get_chemical_symbols()})
        if references and ours != theirs:
            raise InputError(f"--reference holds {', '.join(theirs)} but the structures hold {', '.join(ours)}; "
                             "compare structures of the same elements")  # fmt: skip
        cutoffs = {}
        for text in cutoff or []:
            pair, _, value = text.partition("=")
            try:
                distance = float(value)
            except ValueError:
                distance = -1.0
            if "-" not in pair or not distance > 0:
                raise InputError(f"--cutoff {text!r}: write PAIR=Å with a positive distance, e.g. Si-Si=2.85")
            cutoffs[pair.strip()] = distance
    except ValueError as exc:
        fail(str(exc))
    config = {"files": [str(f) for f in files], "reference": [str(f) for f in reference or []], "cutoffs": cutoffs,
              "max_ring": max_ring, "energy": energy}  # fmt: skip
    with result_folder(out, force) as (output, staging):
        try:
            result = run_analysis(structures, reference=references or None, cutoffs=cutoffs or None,
                                  max_ring=max_ring, energy=energy)  # fmt: skip
        except ValueError as exc:  # e.g. a pair without a first minimum: give --cutoff
            raise InputError(str(exc)) from None
        write_analysis(staging, result, structures, references or None, config=config, force=True)
        output.commit()
    coordination = ", ".join(
        f"{s}: " + " ".join(f"CN{k} {100 * v:.1f}%" for k, v in f.items())
        for s, f in result.summary["coordination"].items()
    )
    err.print(f"wrote {out / 'analysis.json'} and {out / 'analysis.png'}; {coordination}")


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(app())


if __name__ == "__main__":
    run()
