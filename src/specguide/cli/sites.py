"""`specguide sites train | generate | evaluate`: site-specific generation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    DeviceOption,
    app,
    check_device,
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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing checkpoint.")] = False,
) -> None:
    """Train the EGNN site denoiser (EMA weights saved) on a site data set, split by material."""
    from specguide.api import sites_train
    from specguide.io import refuse_overwrite
    from specguide.sites.config import SiteTrainConfig

    config = SiteTrainConfig(data=None if data is None else str(data), test_materials=split_names(test_materials),
                             kinds=split_names(kinds), hidden=hidden, layers=layers, prediction=prediction,
                             max_minutes=max_time, max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed,
                             init=None if init is None else str(init), device=check_device(device))  # fmt: skip
    try:
        refuse_overwrite(out, force, directory=False)
        log = sites_train(out, config)
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
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
    species: Annotated[
        str | None, typer.Option(help="Comma-separated elements the clusters may hold (default: all the model's).")
    ] = None,
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output directory.")] = False,
) -> None:
    """Generate the 3-shell cluster (species + coordinates, excited atom at the origin) from a spectrum."""
    from specguide.api import sites_generate
    from specguide.io import refuse_overwrite
    from specguide.sites.api import write_generation
    from specguide.sites.config import SiteGenerateConfig

    config = SiteGenerateConfig(spectrum=str(spectrum), model=model, samples=samples, n_atoms=atoms, steps=steps,
                                seed=seed, device=check_device(device),
                                species=split_names(species) or None)  # fmt: skip
    try:
        config.check()
        refuse_overwrite(out, force, directory=True)
    except (InputError, ValueError) as exc:
        fail(str(exc))
    with result_folder(out, force) as (output, staging):
        try:
            clusters, summary = sites_generate(config=config)
        except (FileNotFoundError, ValueError) as exc:  # the model and the spectrum are read before sampling
            raise InputError(str(exc)) from None
        write_generation(staging, clusters, summary, config.to_dict(), force=True)
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
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output file.")] = False,
) -> None:
    """Aligned RMSD, CN error per shell, species accuracy and SOAP vs template matching on held-out sites."""
    from specguide.api import sites_evaluate
    from specguide.io import refuse_overwrite, write_json
    from specguide.sites.config import SiteEvaluateConfig

    config = SiteEvaluateConfig(model=model, data=None if data is None else str(data),
                                test_materials=split_names(test_materials), samples=samples, steps=steps,
                                max_sites=max_sites, seed=seed, device=check_device(device))  # fmt: skip
    try:
        refuse_overwrite(out, force, directory=False)
        result = sites_evaluate(config=config)
    except (InputError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    result["config"] = config.to_dict()
    write_json(out, result)
    s = result["summary"]
    m, t = s["model"], s["template"]
    err.print(
        f"{s['n_sites']} sites: shell-1 RMSD {m['rmsd_shell1']:.3f} Å (template {t['rmsd_shell1']:.3f}), "
        f"species accuracy {m['species_accuracy']:.3f}; model beats template on "
        f"{100 * s['model_consensus_beats_template']:.0f} % (consensus pick), "
        f"{100 * s['model_beats_template']:.0f} % (first sample)"
    )
