"""`specguide train-prior` and `specguide generate`: checkpoints, outputs, reproducibility, errors."""

import json

import ase.build
import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import noisy_silicon_frames
from specguide.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    directory = tmp_path_factory.mktemp("prior")
    frames = noisy_silicon_frames(4)
    data = directory / "train.extxyz"
    ase.io.write(data, frames)
    checkpoint = directory / "prior.pt"
    arguments = [
        "train-prior",
        str(data),
        "--out",
        str(checkpoint),
        "--max-epochs",
        "2",
        "--hidden",
        "16",
        "--layers",
        "2",
        "--cutoff",
        "3.0",
    ]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return checkpoint, arguments


def test_train_prior_refuses_to_overwrite_and_needs_a_stop(tiny_prior, tmp_path):
    checkpoint, arguments = tiny_prior
    assert runner.invoke(app, arguments).exit_code == 2
    result = runner.invoke(
        app, ["train-prior", str(checkpoint.parent / "train.extxyz"), "--out", str(tmp_path / "p.pt")]
    )
    assert result.exit_code == 2 and "--max-time" in result.output


def test_train_prior_init_from_fine_tunes_the_given_network(tiny_prior, tmp_path):
    from specguide.pretrained import load_prior

    checkpoint, _ = tiny_prior
    data = str(checkpoint.parent / "train.extxyz")
    out = tmp_path / "tuned.pt"
    # the starting network (width 16) is used, not the --hidden default (64)
    result = runner.invoke(
        app, ["train-prior", data, "--out", str(out), "--max-epochs", "1", "--init-from", str(checkpoint)]
    )
    assert result.exit_code == 0, result.output
    network, meta = load_prior(out)
    assert network.config == load_prior(checkpoint)[0].config and network.config.hidden == 16
    assert meta["training"]["init_from"]["prior"] == str(checkpoint)
    missing = runner.invoke(app, ["train-prior", data, "--out", str(tmp_path / "x.pt"), "--max-epochs", "1",
                                  "--init-from", str(tmp_path / "none.pt")])  # fmt: skip
    assert missing.exit_code == 2 and "--init-from" in missing.output
    carbon = runner.invoke(app, ["train-prior", data, "--out", str(tmp_path / "y.pt"), "--max-epochs", "1",
                                 "--init-from", "a-C"])  # fmt: skip
    assert carbon.exit_code == 2 and "no species [14]" in carbon.output


def test_train_prior_t_range_is_recorded_and_checked(tiny_prior, tmp_path):
    from specguide.pretrained import load_prior

    checkpoint, _ = tiny_prior
    data = str(checkpoint.parent / "train.extxyz")
    out = tmp_path / "low.pt"
    result = runner.invoke(app, ["train-prior", data, "--out", str(out), "--max-epochs", "1", "--init-from",
                                 str(checkpoint), "--t-range", "0.001:0.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_prior(out)[1]["training"]["t_range"] == [0.001, 0.5]
    for bad in ("0.5:0.1", "0.2", "low:high"):
        refused = runner.invoke(app, ["train-prior", data, "--out", str(tmp_path / "x.pt"), "--max-epochs", "1",
                                      "--t-range", bad])  # fmt: skip
        assert refused.exit_code == 2 and "--t-range" in refused.output, bad


def test_generate_writes_structures_config_summary_and_is_reproducible(tiny_prior, tmp_path):
    checkpoint, _ = tiny_prior
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        arguments = [
            "generate",
            "--prior",
            str(checkpoint),
            "--density",
            "2.33",
            "--atoms",
            "64",
            "--replicas",
            "2",
            "--steps",
            "16",
            "--seed",
            "7",
            "--preset",
            "fast",
            "--out",
            str(out),
        ]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        outputs.append(out)
    frames = [ase.io.read(out / "structures.extxyz", ":") for out in outputs]
    assert len(frames[0]) == 2 and all(len(atoms) == 64 for atoms in frames[0])
    for first, second in zip(frames[0], frames[1]):
        np.testing.assert_array_equal(first.positions, second.positions)
    config = json.loads((outputs[0] / "config.json").read_text())
    assert config["seed"] == 7 and config["steps"] == 16 and config["density_g_cm3"] == 2.33
    summary = json.loads((outputs[0] / "summary.json").read_text())
    assert {"coordination", "min_distance", "rdf_first_peak"} <= set(summary)
    # same output directory again: refused without --force
    again = ["generate", "--prior", str(checkpoint), "--density", "2.33", "--atoms", "64", "--out", str(outputs[0])]
    assert runner.invoke(app, again).exit_code == 2


@pytest.mark.parametrize(
    ("prior", "extra", "expected"),
    [
        ("no-such-prior", [], "no such prior"),
        (None, ["--cell", "1,2"], "three positive lengths"),
        (None, ["--restarts", "1", "--cn-range", "Si:four"], "SYMBOL:LO-HI"),
    ],
)
def test_generate_errors_are_one_line(tiny_prior, tmp_path, prior, extra, expected):
    checkpoint, _ = tiny_prior
    arguments = [
        "generate",
        "--prior",
        prior or str(checkpoint),
        "--density",
        "2.33",
        "--atoms",
        "8",
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1


def test_a_foreign_file_is_refused_as_a_prior(tmp_path):
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"not a checkpoint")
    result = runner.invoke(
        app, ["generate", "--prior", str(fake), "--density", "2", "--atoms", "8", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and str(fake) in result.output
