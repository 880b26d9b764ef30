"""`specguide sites train | generate | evaluate`: site-specific generation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    app,
    err,
    fail,
    result_folder,
)
from specguide.io import InputError
from specguide.sites.defaults import DEFAULT_SITE_MODEL, HELD_OUT_MATERIALS, TRAIN_KINDS, split_names

sites_app = typer.Typer(help="Site-specific generation: the 3-shell cluster around an absorber from its spectrum.")
app.add_typer(sites_app, name="sites")


@sites_app.command("train")
def sites_train_command(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.pt).")],
    data: Annotated[
        Path | None, typer.Option(help="Site data set (.npz; default: the bundled O K-edge Si–O set).")
    ] = None,
    test_materials: Annotated[
        str | None, typer.Option(help="Comma-separated materials held out of training.")
    ] = ",".join(HELD_OUT_MATERIALS),
    kinds: Annotated[str, typer.Option(help="Comma-separated site kinds to train on.")] = ",".join(TRAIN_KINDS),
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
        train, _ = split_by_material(dataset, split_names(test_materials), split_names(kinds))
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
    model: Annotated[str, typer.Option(help="Bundled model name or checkpoint (.pt).")] = DEFAULT_SITE_MODEL,
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
    model: Annotated[str, typer.Option(help="Bundled model name or checkpoint (.pt).")] = DEFAULT_SITE_MODEL,
    data: Annotated[Path | None, typer.Option(help="Site data set (.npz; default: bundled).")] = None,
    test_materials: Annotated[str, typer.Option(help="Comma-separated materials to test on.")] = HELD_OUT_MATERIALS[0],
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
        train, test = split_by_material(dataset, split_names(test_materials), list(TRAIN_KINDS))
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
