"""`specguide md melt-quench`: training data for a material of your own, made with LAMMPS."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    Bar,
    ExecutorOption,
    ExecutorWorkersOption,
    SchedulerOption,
    app,
    err,
    executor_of,
    fail,
    result_folder,
)
from specguide.io import InputError

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
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    executor_workers: ExecutorWorkersOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run into the same --out: finished replicas are kept.")
    ] = False,
) -> None:
    """Melt-quench amorphous structures with LAMMPS (Tersoff Si/C, Vashishta Si-O, Mendelev Cu-Zr)."""
    import ase.io

    from specguide.api import melt_quench
    from specguide.chemistry import coordination_fractions
    from specguide.io import refuse_overwrite, write_atomically, write_extxyz, write_json
    from specguide.simulate.lammps import MeltQuenchConfig, MeltQuenchProtocol

    try:
        refuse_overwrite(out, force, directory=True)
        if workers < 1:
            raise InputError("--workers must be positive")
        protocol = MeltQuenchProtocol(melt_time=melt_time, quench_rate=quench_rate)
        config = MeltQuenchConfig(element=element, composition=composition, density_g_cm3=density, n_atoms=atoms,
                                  n_replicas=replicas, seed=seed, potential=potential, protocol=protocol)  # fmt: skip
        config.check()
        where = executor_of(executor, scheduler, executor_workers)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    settings = config.to_dict()
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
        bar = Bar(f"melt-quench ({atoms} atoms, {each:g} ps each)", replicas, len(done))

        def save(index, frame) -> None:
            write_atomically(folder / f"replica_{index:03d}.extxyz", lambda tmp: write_extxyz(tmp, frame))
            bar.advance()

        try:
            frames = melt_quench(config=config, workers=workers, done=done, on_replica=save, executor=where)
        finally:
            bar.close()
        write_atomically(staging / "structures.extxyz", lambda tmp: write_extxyz(tmp, frames))
        config = dict(settings, potential_used=frames[0].info.get("potential"),
                      coordination=coordination_fractions(frames), resumed_replicas=sorted(done),
                      executor=where.to_dict())  # fmt: skip
        write_json(staging / "config.json", config)
        shutil.rmtree(folder)
        (staging / "settings.json").unlink()
        output.commit()
    err.print(f"wrote {len(frames)} structures to {out / 'structures.extxyz'}")
