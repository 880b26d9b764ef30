"""`specguide generate`, `specguide invert` and `specguide demo`."""

from __future__ import annotations

from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from specguide.chemistry import parse_cn_ranges
from specguide.cli.common import (
    PRIOR_HELP,
    DeviceOption,
    ExecutorOption,
    ExecutorWorkersOption,
    ResumeOption,
    SchedulerOption,
    SeedsOption,
    TypesOption,
    app,
    check_device,
    err,
    executor_of,
    fail,
    finish_resumable,
    result_folder,
    resumable,
    run_seeds,
    say,
    seeds_of,
)
from specguide.io import InputError
from specguide.observables.registry import (
    KINDS,
    REAL_SPACE_KINDS,
    SURROGATE_KINDS,
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


ConfigOption = Annotated[
    Path | None,
    typer.Option(help="Rerun a result: the config.json it wrote (its settings replace the sampling options; same "
                 "seed, same structures)."),
]  # fmt: skip


@app.command()
def generate(
    ctx: typer.Context,
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
    seeds: SeedsOption = None,
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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: ResumeOption = False,
    types: TypesOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    executor_workers: ExecutorWorkersOption = None,
) -> None:
    """Generate structures from a prior: DIR/structures.extxyz, config.json (every parameter), summary.json."""
    from specguide.api import generate as generate_structures
    from specguide.api import generate_seeds, read_run_config
    from specguide.chemistry import parse_composition
    from specguide.diffusion.sampler import GenerateConfig, write_generation
    from specguide.io import read_structures, refuse_overwrite

    chosen = check_device(device)
    try:
        refuse_overwrite(out, force, directory=True)
        runs = seeds_of(ctx, seeds, seed)
        where = executor_of(executor, scheduler, executor_workers)
        if runs is None and (where.kind != "local" or executor_workers is not None):
            raise InputError("--executor, --scheduler and --executor-workers say where the runs of --seeds go; "
                             "give --seeds (one run alone runs here)")  # fmt: skip
        if config is not None:
            prior, request, init_text = read_run_config(config, "generate")
            init = None if init_text == "random" else Path(init_text)
            request = request if device is None else request.replace(device=chosen)
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
                                     corrector_steps=corrector_steps, device=chosen)  # fmt: skip
        start = "random" if init is None else read_structures(init, types=types)
    except ValueError as exc:
        fail(str(exc))
    started_from = str(init) if init else "random"
    settings = {"command": "generate", "prior": prior, "init": str(init), **request.to_dict()}
    if runs is not None:

        def sample(todo: list[int], on_result) -> None:
            try:
                generate_seeds(prior, todo, request, init=start, executor=where, on_result=on_result)
            except (FileNotFoundError, ValueError) as exc:  # the first seed finds bad input before sampling
                raise InputError(str(exc)) from None

        write = partial(write_generation, init=started_from)
        settings = {**settings, "seeds": runs}
        _print_seeds(out, run_seeds(out, force, resume, runs, settings, sample, write, _headline, where))
        return
    with result_folder(out, force, resume=resume) as (output, staging):
        checkpoint = resumable(staging, settings, resume)
        try:
            run = generate_structures(prior, request, init=start, progress=True, checkpoint=checkpoint)
        except (FileNotFoundError, ValueError) as exc:  # found before sampling: bad input
            raise InputError(str(exc)) from None
        finish_resumable(staging)
        summary = write_generation(staging, run, init=started_from, force=True)
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
    ctx: typer.Context,
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
    seeds: SeedsOption = None,
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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: ResumeOption = False,
    types: TypesOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    executor_workers: ExecutorWorkersOption = None,
) -> None:
    """Invert measured spectra into an ensemble of structures (structures.extxyz, summary, config, report.png)."""
    from specguide.api import invert as run_inversion
    from specguide.api import invert_seeds, read_run_config
    from specguide.chemistry import parse_composition
    from specguide.diffusion.guidance import GuidanceConfig
    from specguide.diffusion.inversion import InvertConfig, auto_densities, parse_densities, write_inversion
    from specguide.diffusion.sampler import GenerateConfig
    from specguide.io import read_structures, refuse_overwrite
    from specguide.observables.measured import parse_target_spec

    chosen = check_device(device)
    try:
        refuse_overwrite(out, force, directory=True)
        runs = seeds_of(ctx, seeds, seed)
        if config is not None:
            prior, request, _ = read_run_config(config, "invert")
            request = request if device is None else request.replace(sampling=request.sampling.replace(device=chosen))
        else:
            if prior is None or not target or density is None or atoms is None:
                raise InputError("give --prior, --target, --density and --atoms (or --config of an earlier result)")
            if atoms < 1 or replicas < 1 or steps < 1:
                raise InputError("--atoms, --replicas and --steps must be positive")
            fractions = None if composition is None else parse_composition(composition)
            sampling = GenerateConfig(n_atoms=atoms, n_replicas=replicas, steps=steps, seed=seed, preset=preset.value,
                                      corrector_steps=corrector_steps, n_restarts=restarts,
                                      restart_mode=None if restart_mode is None else restart_mode.value,
                                      cn_range=parse_cn_ranges(cn_range), composition=fractions,
                                      device=chosen)  # fmt: skip
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
        where = executor_of(executor, scheduler, executor_workers)  # the seeds, else the densities of a scan
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))

    def note(message: str) -> None:
        say("note:", "bold cyan", message)

    settings = {"command": "invert", "prior": prior, **request.to_dict()}
    if runs is not None:

        def write(folder: Path, result) -> dict:
            write_inversion(folder, result)
            return result.summary

        def sample(todo: list[int], on_result) -> None:
            try:
                invert_seeds(prior, None, todo, request, init=start, executor=where, on_result=on_result)
            except (ValueError, FileNotFoundError) as exc:  # the first seed reads the targets before sampling
                raise InputError(str(exc)) from None

        settings = {**settings, "seeds": runs}
        _print_seeds(out, run_seeds(out, force, resume, runs, settings, sample, write, _headline, where))
        return
    with result_folder(out, force, resume=resume) as (output, staging):
        checkpoint = resumable(staging, settings, resume)
        try:
            result = run_inversion(prior, None, request, init=start, progress=True, notify=note, checkpoint=checkpoint,
                                   executor=where)  # fmt: skip
        except (ValueError, FileNotFoundError) as exc:  # targets and options are read before any sampling
            raise InputError(str(exc)) from None
        finish_resumable(staging)
        write_inversion(staging, result, force=True)
        output.commit()
    losses = ", ".join(f"{label} {v['ensemble_mean_spectrum']:.3g}" for label, v in result.summary["losses"].items())
    err.print(f"wrote {len(result.structures)} structures to {out / 'structures.extxyz'}; look at {out / 'report.png'}")
    err.print(f"loss of the ensemble-mean spectrum: {losses}")
    _print_structure(result.summary)
    wrong = result.summary.get("shorter_than_reference")
    if wrong:
        say("warning:", "bold yellow", f"pairs closer than the prior's training data ever have: {wrong}")


def _headline(summary: dict) -> dict:
    """The numbers of one seed's summary that OUT/seeds.json lists."""
    mean_cn = {symbol: entry["mean"] for symbol, entry in summary.get("coordination", {}).items()}
    headline = {"n_structures": summary["n_structures"], "min_distance": summary["min_distance"],
                "rdf_first_peak": summary["rdf_first_peak"], "mean_coordination": mean_cn}  # fmt: skip
    if "losses" in summary:  # an inversion
        headline["density_g_cm3_used"] = summary["density_g_cm3_used"]
        headline["loss_of_ensemble_mean_spectrum"] = {label: v["ensemble_mean_spectrum"]
                                                      for label, v in summary["losses"].items()}  # fmt: skip
    if summary.get("shorter_than_reference"):
        headline["shorter_than_reference"] = summary["shorter_than_reference"]
    return headline


def _print_seeds(out: Path, runs: list[dict]) -> None:
    """One line per seed of a --seeds run."""
    for run in runs:
        losses = run.get("loss_of_ensemble_mean_spectrum", {})
        parts = [f"{run['n_structures']} structures", f"shortest pair {run['min_distance']} Å",
                 *(f"CN({symbol}) {cn:.2f}" for symbol, cn in run["mean_coordination"].items()),
                 *(f"loss {label} {value:.3g}" for label, value in losses.items())]  # fmt: skip
        err.print(f"seed {run['seed']}: {out / run['folder']}: " + ", ".join(parts), markup=False)
        if run.get("shorter_than_reference"):
            say("warning:", "bold yellow", f"seed {run['seed']}: pairs closer than the prior's training data ever "
                f"have: {run['shorter_than_reference']}")  # fmt: skip
    err.print(f"index of the runs: {out / 'seeds.json'}", markup=False)


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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
) -> None:
    """Invert the g(r) of a held-out a-Si MD replica with the bundled prior (a few minutes on 2 CPU cores)."""
    from specguide.api import demo as run_demo
    from specguide.io import refuse_overwrite

    chosen = check_device(device)
    try:
        refuse_overwrite(out, force, directory=True)
        if replicas < 1 or steps < 1:
            raise InputError("--replicas and --steps must be positive")
    except InputError as exc:
        fail(str(exc))
    with result_folder(out, force) as (output, staging):
        result, comparison = run_demo(staging, n_replicas=replicas, steps=steps, seed=seed, force=True, device=chosen)
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
