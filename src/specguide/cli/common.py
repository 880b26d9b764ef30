"""What every command shares: the Typer app and its options (--debug, --verbose, --threads, --version), one-line
errors (bad input: exit 2, a failure after the start: exit 1), result folders that appear whole, resumable runs."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from specguide.config import SEEDS_HELP
from specguide.io import InputError, OutputDirectory

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


def say(label: str, style: str, message: str) -> None:
    """One line to stderr; the message is printed as is (no markup: brackets in element lists survive)."""
    err.print(Text.assemble((label, style), " ", str(message)), soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Bad input, found before any work: print one error line and exit with status 2."""
    say("error:", "bold red", message)
    raise typer.Exit(code=2)


def failed(exc: BaseException, kept: Path | None = None) -> NoReturn:
    """A failure after the work started: one line (the traceback with --debug) and exit status 1."""
    if STATE["debug"]:
        raise exc
    where = f"; what had finished is in {kept}" if kept is not None and kept.exists() and any(kept.iterdir()) else ""
    say("failed:", "bold red", f"{exc}{where} (rerun with --debug for the traceback)")
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
        say("interrupted:", "bold yellow", f"nothing was written to {out}; {what}")
        raise typer.Exit(code=130) from None
    except Exception as exc:  # noqa: BLE001 - any failure after the start: one line, exit 1
        failed(exc, output.staging)


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
        say("warning:", "bold yellow", str(message))


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
        say("threads:", "bold cyan", f"{chosen} ({why})")


DeviceOption = Annotated[
    str | None,
    typer.Option(help="Where torch computes: auto (a GPU if torch sees one, else the CPU; the default), cpu, cuda or "
                 "cuda:K (GPU K). Results record the device used; the same seed gives the same result on the same "
                 "kind of device."),
]  # fmt: skip


def check_device(device: str | None) -> str:
    """``--device`` as given (``auto`` when not given), refused with one line before any work if torch cannot use
    it (:func:`specguide.devices.resolve_device`)."""
    from specguide.devices import resolve_device

    text = "auto" if device is None else device
    try:
        resolve_device(text)
    except InputError as exc:
        fail(str(exc))
    return text


DevicesOption = Annotated[
    int, typer.Option(help="How many devices train together (GPUs with --device cuda), one process each: give "
                      "--strategy ddp.")
]  # fmt: skip
StrategyOption = Annotated[
    str, typer.Option(help="Lightning's strategy: auto (one device) or ddp (distributed data parallel over --devices, "
                      "one process per device: the command is started again in each).")
]  # fmt: skip


def training_hardware(device: str | None, devices: int, strategy: str):
    """The :class:`~specguide.training.loop.TrainingHardware` of ``--device``, ``--devices`` and ``--strategy``,
    refused with one line before any work if this machine cannot run it."""
    from specguide.training.loop import TrainingHardware

    try:
        hardware = TrainingHardware(device=check_device(device), devices=devices, strategy=strategy)
        hardware.trainer_arguments()
    except InputError as exc:
        fail(str(exc))
    return hardware


ResumeOption = Annotated[
    bool,
    typer.Option(help="Continue an interrupted run into the same --out (same settings): it picks up where it stopped "
                 "and gives the same structures as an uninterrupted run."),
]  # fmt: skip


ExecutorOption = Annotated[
    str,
    typer.Option(help="Where independent tasks run: local (this machine's processes), dask (a Dask cluster: "
                 "--scheduler, else a LocalCluster), or a batch queue through dask-jobqueue: slurm, pbs, sge, lsf "
                 "(its settings in ~/.config/dask/jobqueue.yaml; see docs/cluster.md)."),
]  # fmt: skip
SchedulerOption = Annotated[
    str | None, typer.Option(help="Address of a running Dask scheduler (tcp://HOST:8786); implies --executor dask.")
]
ExecutorWorkersOption = Annotated[
    int | None,
    typer.Option(help="Workers of --executor: local processes, a Dask LocalCluster's processes, or the Dask workers "
                 "the queue's jobs start."),
]  # fmt: skip


def executor_of(kind: str, scheduler: str | None, workers: int | None):
    """The :class:`~specguide.executors.ExecutorConfig` of ``--executor``, ``--scheduler``, ``--executor-workers``."""
    from specguide.executors import ExecutorConfig

    return ExecutorConfig.from_cli(kind, scheduler, workers)


SeedsOption = Annotated[
    str | None,
    typer.Option(help=f"One run per seed ({SEEDS_HELP}), run where --executor says: OUT/seed-K/ holds what --seed K "
                 "alone writes (the same structures), OUT/seeds.json lists the folders and each one's headline "
                 "numbers; --resume reruns only the seeds that had not finished. Not with --seed."),
]  # fmt: skip


def seeds_of(ctx: typer.Context, seeds: str | None, seed: int) -> list[int] | None:
    """The seeds of ``--seeds`` (None without it); ``InputError`` for bad text or with an explicit ``--seed``."""
    from specguide.config import parse_seeds

    if seeds is None:
        return None
    given = getattr(ctx.get_parameter_source("seed"), "name", None) == "COMMANDLINE"  # typer's own click's enum
    if seed != 0 or given:
        raise InputError(f"--seed {seed} and --seeds {seeds}: give one of them (--seeds K alone runs seed K)")
    return parse_seeds(seeds)


def run_seeds(out: Path, force: bool, resume: bool, seeds: list[int], settings: dict, run, write, headline,
              where) -> list[dict]:  # fmt: skip
    """The result folder of a ``--seeds`` run. ``run(seeds, on_result)`` runs the given seeds (an ``api.*_seeds``
    call); ``write(folder, result)`` writes one seed's result into ``OUT/seed-K/`` as it arrives (whole or not at
    all) and returns its summary; ``headline(summary)`` its numbers that ``OUT/seeds.json`` lists in seed order.
    With ``resume`` (the same ``settings``) the seeds whose folders an interrupted run finished are kept, not rerun.
    Returns the list."""
    from specguide.io import write_json

    with result_folder(out, force, resume=resume) as (output, staging):
        resumable(staging, settings, resume)
        done = [seed for seed in seeds if (staging / f"seed-{seed}" / "summary.json").is_file()]
        entries = {seed: json.loads((staging / f"seed-{seed}" / "summary.json").read_text()) for seed in done}
        todo = [seed for seed in seeds if seed not in entries]
        bar = Bar(f"{settings['command']}: {len(seeds)} seeds", len(seeds), len(done))

        def save(index: int, result) -> None:
            name = f"seed-{todo[index]}"
            partial = staging / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            entries[todo[index]] = write(partial, result)
            partial.rename(staging / name)
            bar.advance()

        try:
            if todo:
                run(todo, save)
        finally:
            bar.close()
        listed = [{"seed": seed, "folder": f"seed-{seed}", **headline(entries[seed])} for seed in seeds]
        finish_resumable(staging)
        write_json(staging / "seeds.json", {"command": settings["command"], "seeds": seeds, "resumed": done,
                                            "executor": where.to_dict(), "runs": listed})  # fmt: skip
        output.commit()
    return listed


def resumable(staging: Path, settings: dict, resume: bool):
    """The sampler checkpoint of a run in ``staging``; with ``resume`` the saved settings must match ``settings``."""
    from specguide.diffusion.sampler import SamplerCheckpoint
    from specguide.io import write_json

    saved = staging / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if resume and saved.is_file() and json.loads(saved.read_text()) != settings:
        raise InputError(f"{staging}: the interrupted run had other settings; rerun with those or drop --resume")
    write_json(saved, settings)
    return SamplerCheckpoint(staging / "checkpoints")


def finish_resumable(staging: Path) -> None:
    """Remove what only a resumed run needs before the result is published."""
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    (staging / "settings.json").unlink(missing_ok=True)


class Bar:
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


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(app())
