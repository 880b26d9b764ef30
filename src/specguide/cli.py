"""Command line: a thin layer over the Python API. Bad input → one line naming the file and the fix, exit 2."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from specguide.io import InputError

app = typer.Typer(
    help="specguide: realistic 3D structures of disordered materials from their spectra.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False)


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=2)


class Kind(str, Enum):
    gr = "gr"
    pdf = "pdf"
    rdf = "rdf"
    adf = "adf"
    sq = "sq"
    fq = "fq"
    xrd = "xrd"
    nd = "nd"


class Weighting(str, Enum):
    number = "number"
    xray = "xray"
    neutron = "neutron"


@app.callback()
def main() -> None:
    """specguide: realistic 3D structures of disordered materials from their spectra."""


@app.command()
def spectrum(
    structure: Annotated[Path, typer.Argument(help="Structure file readable by ASE (extxyz, POSCAR, CIF, ...).")],
    kind: Annotated[
        Kind,
        typer.Option(
            help="gr: g(r); pdf: G(r); rdf: 4πr²ρg(r); adf: bond angles; "
            "sq: S(Q); fq: F(Q); xrd: X-ray I(Q); nd: neutron I(Q)."
        ),
    ],
    weighting: Annotated[
        Weighting, typer.Option(help="Pair weighting of totals (gr, pdf, rdf, sq, fq).")
    ] = Weighting.number,
    r_max: Annotated[float, typer.Option(help="Largest pair distance used, Å (must be ≤ half the cell).")] = 8.0,
    dr: Annotated[float, typer.Option(help="Real-space grid step, Å.")] = 0.02,
    sigma: Annotated[float, typer.Option(help="Gaussian smoothing of pair distances, Å.")] = 0.15,
    q_min: Annotated[float, typer.Option(help="Smallest Q, Å⁻¹ (below ~1 Å⁻¹ the finite r-max window dominates).")] = 1.0,
    q_max: Annotated[float, typer.Option(help="Largest Q, Å⁻¹.")] = 20.0,
    dq: Annotated[float, typer.Option(help="Q grid step, Å⁻¹.")] = 0.05,
    adf_cutoff: Annotated[
        float | None, typer.Option(help="Bond cutoff for bond angles, Å (default 1.3 × covalent radii).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Two-column text file to write (default: print).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save a plot (PNG).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Compute a spectrum of a structure file (averaged over its frames) and write it as two columns."""
    from specguide.api import compute_spectrum
    from specguide.io import refuse_overwrite, write_two_columns

    try:
        for target in (out, plot):
            if target is not None:
                refuse_overwrite(target, force)
        options = dict(r_max=r_max, dr=dr, sigma=sigma, q_min=q_min, q_max=q_max, dq=dq, adf_cutoff=adf_cutoff)
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


def run() -> None:  # pragma: no cover - console entry point wrapper
    sys.exit(app())
