"""`specguide sites train / generate / evaluate` end to end on a tiny synthetic data set."""

import json

import ase.io
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from specguide.cli import app
from specguide.sites.clusters import site_cluster, unique_sites
from specguide.sites.crystals import build_phase
from specguide.sites.dataset import SiteDataset, load_site_dataset

torch.set_num_threads(1)
runner = CliRunner()
GRID = np.linspace(-1.0, 19.0, 200)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Crystal clusters with made-up (but distinct) spectra, 2 perturbed copies each; and a trained model."""
    tmp = tmp_path_factory.mktemp("sites")
    rng = np.random.default_rng(0)
    clusters, material, kind, spectra = [], [], [], []
    for m, name in enumerate(["alpha-quartz", "beta-quartz", "alpha-cristobalite", "stishovite"]):
        atoms = build_phase(name)
        site = int(unique_sites(atoms)[0])
        for copy in range(3):
            a = atoms.repeat(2)
            if copy:
                a.positions += rng.normal(0, 0.05, a.positions.shape)
            clusters.append(site_cluster(a, site))
            material.append(name)
            kind.append("crystal" if copy == 0 else "perturbed")
            spectra.append(np.exp(-((GRID - 2 - 3 * m) ** 2) / 4) + 0.01 * rng.random(200))
    spec = np.array(spectra) / np.trapezoid(spectra, GRID, axis=1)[:, None]
    sigma = np.zeros(len(clusters))
    data = SiteDataset(GRID, spec.astype(np.float32), clusters, np.array(material), np.array(kind), sigma, {})
    data.save(tmp / "tiny.npz")
    ckpt = tmp / "tiny.pt"
    result = runner.invoke(
        app,
        [
            "sites",
            "train",
            "--data",
            str(tmp / "tiny.npz"),
            "--out",
            str(ckpt),
            "--max-steps",
            "20",
            "--test-materials",
            "alpha-cristobalite",
            "--hidden",
            "16",
            "--layers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp, ckpt


def test_dataset_roundtrip(tiny):
    tmp, _ = tiny
    data = load_site_dataset(tmp / "tiny.npz")
    assert len(data) == 12 and data.spectra.shape == (12, 200)
    assert np.allclose(data.clusters[0].positions[0], 0)


def test_generate_and_evaluate(tiny):
    tmp, ckpt = tiny
    spectrum = tmp / "spec.dat"
    np.savetxt(spectrum, np.column_stack([np.linspace(-2, 20, 111), np.exp(-(np.linspace(-2, 20, 111) ** 2) / 9)]))
    out = tmp / "gen"
    args = [
        "sites",
        "generate",
        "--model",
        str(ckpt),
        "--spectrum",
        str(spectrum),
        "--samples",
        "3",
        "--steps",
        "5",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frames = ase.io.read(out / "clusters.extxyz", ":")
    assert len(frames) == 3 and all(f.numbers[0] == 8 for f in frames)
    summary = json.loads((out / "summary.json").read_text())
    assert {"shell1", "shell2", "first_shell_angles_deg"} <= set(summary["samples"][0])
    assert [s["rank"] for s in summary["samples"]] == [0, 1, 2]
    assert summary["samples"][0]["sample"] == summary["selected_sample"] == frames[0].info["sample"]
    assert frames[0].info["consensus"] >= frames[1].info["consensus"] >= frames[2].info["consensus"]
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    again = runner.invoke(app, args)  # refuses to overwrite
    assert again.exit_code == 2 and "--force" in again.output
    res = tmp / "eval.json"
    result = runner.invoke(
        app,
        [
            "sites",
            "evaluate",
            "--model",
            str(ckpt),
            "--data",
            str(tmp / "tiny.npz"),
            "--test-materials",
            "alpha-cristobalite",
            "--samples",
            "2",
            "--steps",
            "5",
            "--out",
            str(res),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(res.read_text())
    assert report["summary"]["n_sites"] == 3
    assert 0 <= report["summary"]["model_consensus_beats_template"] <= 1
    assert all(r["template_material"] != "alpha-cristobalite" for r in report["sites"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("0 1\n1 nan\n", "NaN"),
        ("# only a header\n", "no numeric data"),
        ("0 1\n5 2\n", "covers"),
        ("\n".join(f"{e} {-1.0}" for e in range(-2, 21)), "negative"),
    ],
)
def test_bad_spectrum_exit_2(tiny, content, message):
    tmp, ckpt = tiny
    bad = tmp / "bad.dat"
    bad.write_text(content)
    result = runner.invoke(
        app, ["sites", "generate", "--model", str(ckpt), "--spectrum", str(bad), "--out", str(tmp / "x"), "--force"]
    )
    assert result.exit_code == 2
    assert "bad.dat" in result.output and message in result.output


def test_unknown_model_and_material_exit_2(tmp_path, tiny):
    tmp, _ = tiny
    spectrum = tmp / "spec.dat"
    result = runner.invoke(
        app, ["sites", "generate", "--model", "nope", "--spectrum", str(spectrum), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "nope" in result.output
    result = runner.invoke(
        app,
        [
            "sites",
            "train",
            "--data",
            str(tmp / "tiny.npz"),
            "--out",
            str(tmp_path / "m.pt"),
            "--test-materials",
            "quartzz",
        ],
    )
    assert result.exit_code == 2 and "quartzz" in result.output


def test_continue_training_from_checkpoint(tiny, tmp_path):
    from specguide.pretrained import load_site_model

    tmp, ckpt = tiny
    out = tmp_path / "more.pt"
    args = ["sites", "train", "--data", str(tmp / "tiny.npz"), "--out", str(out), "--init", str(ckpt)]
    result = runner.invoke(app, [*args, "--max-steps", "3", "--test-materials", "alpha-cristobalite"])
    assert result.exit_code == 0, result.output
    model, meta = load_site_model(out)
    assert meta["log"]["total_steps"] == 23 and meta["log"]["previous"]["steps"] == 20
    assert model.config.hidden == 16  # sizes come from the checkpoint


def test_a_model_trained_on_clusters_with_aluminium_has_it_as_a_species_and_generate_can_exclude_it(tmp_path):
    """Species come from the training clusters (absorber first), are saved with the model, and ``--species``
    restricts what generated clusters hold; a model without Al refuses to continue training on such clusters."""
    from specguide.pretrained import load_site_model
    from specguide.sites.silicates import build_silicate

    atoms = build_silicate("jadeite")  # every O cluster holds Al (Al–O 1.93 Å)
    oxygens = np.flatnonzero(atoms.numbers == 8)[:4]
    clusters = [site_cluster(atoms, int(o)) for o in oxygens]
    spec = np.array([np.exp(-((GRID - 3 - 2 * k) ** 2) / 4) for k in range(4)])
    spec /= np.trapezoid(spec, GRID, axis=1)[:, None]
    data = SiteDataset(GRID, spec.astype(np.float32), clusters, np.array(["jadeite"] * 4), np.array(["crystal"] * 4),
                       np.zeros(4), {})  # fmt: skip
    data.save(tmp_path / "al.npz")
    common = ["sites", "train", "--data", str(tmp_path / "al.npz"), "--test-materials", ""]
    small = ["--hidden", "16", "--layers", "2", "--max-steps", "3"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "al.pt"), *small])
    assert result.exit_code == 0, result.output
    model, meta = load_site_model(tmp_path / "al.pt")
    assert model.config.species == (8, 13, 14) == tuple(meta["species"])

    np.savetxt(tmp_path / "spectrum.dat", np.column_stack([GRID, spec[0]]))
    base = ["sites", "generate", "--spectrum", str(tmp_path / "spectrum.dat"), "--model", str(tmp_path / "al.pt")]
    base += ["--samples", "6", "--steps", "5", "--atoms", "12"]
    free = runner.invoke(app, [*base, "--out", str(tmp_path / "free")])
    only = runner.invoke(app, [*base, "--out", str(tmp_path / "only"), "--species", "O,Si"])
    assert free.exit_code == 0 and only.exit_code == 0, free.output + only.output
    read = {name: ase.io.read(tmp_path / name / "clusters.extxyz", ":") for name in ("free", "only")}
    by_sample = {name: {a.info["sample"]: a.numbers for a in frames} for name, frames in read.items()}
    assert all(set(n.tolist()) <= {8, 14} for n in by_sample["only"].values())
    for k, numbers in by_sample["free"].items():  # same draw: wherever O or Si already won, the choice is unchanged
        keep = numbers != 13
        assert (by_sample["only"][k][keep] == numbers[keep]).all()
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "bad"), "--species", "O,Fe"])
    assert bad.exit_code != 0 and "species" in bad.output

    bundled = ["--init", "O-K_SiO", "--max-steps", "1"]
    refused = runner.invoke(app, [*common, "--out", str(tmp_path / "refused.pt"), *bundled])
    assert refused.exit_code != 0 and "[13]" in refused.output
