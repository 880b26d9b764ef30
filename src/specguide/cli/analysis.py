"""`specguide analyze`: structural analysis against a reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    DeviceOption,
    TypesOption,
    app,
    check_device,
    err,
    fail,
    result_folder,
)
from specguide.io import InputError


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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
    types: TypesOption = None,
) -> None:
    """Coordination, angles, dihedrals, rings, q4/q6, Voronoi volumes and indices, crystallinity, partial and X-ray/
    neutron g(r), energy; Delta_ED vs a reference. The g(r) and Delta_ED spectra are computed on --device."""
    from specguide.analysis.report import AnalyzeConfig, parse_cutoffs, write_analysis
    from specguide.api import analyze as run_analysis
    from specguide.io import read_structures, refuse_overwrite

    chosen = check_device(device)
    try:
        refuse_overwrite(out, force, directory=True)
        structures = [atoms for path in files for atoms in read_structures(path, types=types)]
        references = [atoms for path in reference or [] for atoms in read_structures(path, types=types)]
        ours = sorted({s for atoms in structures for s in atoms.get_chemical_symbols()})
        theirs = sorted({s for atoms in references for s in atoms.get_chemical_symbols()})
        if references and ours != theirs:
            raise InputError(f"--reference holds {', '.join(theirs)} but the structures hold {', '.join(ours)}; "
                             "compare structures of the same elements")  # fmt: skip
        cutoffs = parse_cutoffs(cutoff)
    except ValueError as exc:
        fail(str(exc))
    config = AnalyzeConfig(files=[str(f) for f in files], reference=[str(f) for f in reference or []],
                           cutoffs=cutoffs or None, max_ring=max_ring, energy=energy, device=chosen)  # fmt: skip
    with result_folder(out, force) as (output, staging):
        try:
            result = run_analysis(structures, references or None, config=config)
        except ValueError as exc:  # e.g. a pair without a first minimum: give --cutoff
            raise InputError(str(exc)) from None
        write_analysis(staging, result, structures, references or None, config=config.to_dict(), force=True)
        output.commit()
    coordination = ", ".join(
        f"{s}: " + " ".join(f"CN{k} {100 * v:.1f}%" for k, v in f.items())
        for s, f in result.summary["coordination"].items()
    )
    voronoi = result.summary["voronoi_indices"]
    if voronoi["available"]:
        coordination += "; Voronoi <0,0,12,0>: " + ", ".join(
            f"{s} {100 * v['icosahedral']['mean']:.1f}%" for s, v in voronoi["centre"].items() if s != "all"
        )
    err.print(f"wrote {out / 'analysis.json'} and {out / 'analysis.png'}; {coordination}")
