"""`specguide generate|invert --seeds`: one run per seed in OUT/seed-K/, each the run `--seed K` gives bit for bit,
locally and through a Dask LocalCluster (skipped without dask.distributed); bad --seeds text and an existing OUT
are refused before any work.

Every run holds torch to one thread (``--threads 1``), as the Dask workers run, so that the local and the Dask
structures can be compared bit for bit; the thread count is restored after each test.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from specguide.cli import app
from specguide.config import parse_seeds
from specguide.io import InputError

runner = CliRunner()
GENERATE = ["generate", "--prior", "a-Si", "--density", "2.33", "--atoms", "64", "--steps", "8", "--preset", "fast"]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _run(*args: str) -> str:
    result = runner.invoke(app, ["--threads", "1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _invert_args(folder) -> list[str]:
    return ["invert", "--prior", "a-Si", "--target", f"gr:{folder / 'gr.dat'}", "--density", "2.33", "--atoms", "64",
            "--replicas", "1", "--steps", "8", "--preset", "fast"]  # fmt: skip


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """``generate --seeds 1,2`` in this process."""
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("seeds") / "two"
    try:
        _run(*GENERATE, "--seeds", "1,2", "--out", str(out))
    finally:
        torch.set_num_threads(threads)
    return out


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds(" 7, 0-2 ,10") == [7, 0, 1, 2, 10]
    with pytest.raises(InputError, match="seed 1 given twice"):
        parse_seeds("0-2,1")


def test_generate_seeds_equal_separate_runs_and_refuse_to_overwrite(seeds_run, tmp_path):
    index = json.loads((seeds_run / "seeds.json").read_text())
    assert index["seeds"] == [1, 2] and [r["folder"] for r in index["runs"]] == ["seed-1", "seed-2"]
    assert index["executor"]["kind"] == "local"
    for seed in (1, 2):
        single = tmp_path / f"single-{seed}"
        _run(*GENERATE, "--seed", str(seed), "--out", str(single))
        folder = seeds_run / f"seed-{seed}"
        assert {p.name for p in folder.iterdir()} == {p.name for p in single.iterdir()}
        assert (folder / "structures.extxyz").read_bytes() == (single / "structures.extxyz").read_bytes()
        assert (folder / "summary.json").read_text() == (single / "summary.json").read_text()
        config = json.loads((folder / "config.json").read_text())
        assert config["seed"] == seed and config["generate"]["seed"] == seed
        summary = json.loads((single / "summary.json").read_text())
        assert index["runs"][seed - 1]["min_distance"] == summary["min_distance"]
    assert (seeds_run / "seed-1" / "structures.extxyz").read_bytes() != (
        seeds_run / "seed-2" / "structures.extxyz"
    ).read_bytes()
    before = (seeds_run / "seeds.json").read_bytes()
    again = runner.invoke(app, [*GENERATE, "--seeds", "1,2", "--out", str(seeds_run)])
    assert again.exit_code == 2 and "--force" in again.output
    assert (seeds_run / "seeds.json").read_bytes() == before


def test_generate_seeds_through_dask_equal_the_local_run(seeds_run, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed not installed: pip install '.[cluster]'")
    out = tmp_path / "dask"
    _run(*GENERATE, "--seeds", "1,2", "--executor", "dask", "--executor-workers", "2", "--out", str(out))
    index = json.loads((out / "seeds.json").read_text())
    assert index["executor"]["kind"] == "dask" and index["executor"]["workers"] == 2
    for seed in (1, 2):
        ours, theirs = seeds_run / f"seed-{seed}", out / f"seed-{seed}"
        assert (theirs / "structures.extxyz").read_bytes() == (ours / "structures.extxyz").read_bytes()
    assert index["runs"] == json.loads((seeds_run / "seeds.json").read_text())["runs"]


def test_invert_seeds_equal_separate_runs(rattled_silicon, tmp_path):
    out = tmp_path / "seeds"
    _run(*_invert_args(rattled_silicon), "--seeds", "3-4", "--out", str(out))
    index = json.loads((out / "seeds.json").read_text())
    assert [r["seed"] for r in index["runs"]] == [3, 4]
    for seed in (3, 4):
        single = tmp_path / f"single-{seed}"
        _run(*_invert_args(rattled_silicon), "--seed", str(seed), "--out", str(single))
        folder = out / f"seed-{seed}"
        assert {p.name for p in folder.iterdir()} == {p.name for p in single.iterdir()}
        assert (folder / "structures.extxyz").read_bytes() == (single / "structures.extxyz").read_bytes()
        assert json.loads((folder / "config.json").read_text())["seed"] == seed
        losses = json.loads((single / "summary.json").read_text())["losses"]
        assert index["runs"][seed - 3]["loss_of_ensemble_mean_spectrum"] == {
            label: v["ensemble_mean_spectrum"] for label, v in losses.items()
        }


def test_an_interrupted_seeds_run_resumes_without_rerunning_finished_seeds(seeds_run, tmp_path, monkeypatch):
    """Seed 2 is interrupted (Ctrl-C) after seed 1 was written; --resume runs seed 2 only and gives the result of
    the uninterrupted run."""
    from specguide.diffusion import sampler

    ran = []
    task = sampler._generate_task

    def interrupted(arguments):
        ran.append(arguments[1].seed)
        if arguments[1].seed == 2:
            raise KeyboardInterrupt
        return task(arguments)

    monkeypatch.setattr(sampler, "_generate_task", interrupted)
    out = tmp_path / "resumed"
    first = runner.invoke(app, ["--threads", "1", *GENERATE, "--seeds", "1,2", "--out", str(out)])
    assert first.exit_code == 130 and not out.exists() and ran == [1, 2], first.output
    refused = runner.invoke(app, [*GENERATE, "--seeds", "1,2", "--out", str(out)])
    assert refused.exit_code == 2 and "--resume" in refused.output
    other = runner.invoke(app, [*GENERATE, "--seeds", "1,3", "--resume", "--out", str(out)])
    assert other.exit_code == 2 and "other settings" in other.output
    monkeypatch.setattr(sampler, "_generate_task", lambda arguments: ran.append(arguments[1].seed) or task(arguments))
    _run(*GENERATE, "--seeds", "1,2", "--resume", "--out", str(out))
    assert ran == [1, 2, 2]
    index = json.loads((out / "seeds.json").read_text())
    assert index["resumed"] == [1] and index["runs"] == json.loads((seeds_run / "seeds.json").read_text())["runs"]
    for seed in (1, 2):
        ours, theirs = seeds_run / f"seed-{seed}", out / f"seed-{seed}"
        assert (theirs / "structures.extxyz").read_bytes() == (ours / "structures.extxyz").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["seed-1", "seed-2", "seeds.json"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--seeds", "1,x"], "--seeds '1,x': 'x' is neither a seed nor a range"),
        (["--seeds", "3-1"], "'3-1' is neither a seed nor a range"),
        (["--seeds", "-2"], "'-2' is neither a seed nor a range"),
        (["--seeds", "1,2,1"], "seed 1 given twice"),
        (["--seeds", ""], "'' is neither a seed nor a range"),
        (["--seeds", "1,2", "--seed", "5"], "--seed 5 and --seeds 1,2: give one of them"),
        (["--seeds", "1,2", "--seed", "0"], "--seed 0 and --seeds 1,2: give one of them"),
    ],
)
def test_bad_seeds_are_refused_before_any_work(options, message, rattled_silicon, tmp_path):
    for command in (GENERATE, _invert_args(rattled_silicon)):
        result = runner.invoke(app, [*command, *options, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
        assert not (tmp_path / "out").exists()


def test_generate_executor_without_seeds_is_refused(tmp_path):
    result = runner.invoke(app, [*GENERATE, "--executor", "dask", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "give --seeds" in result.output
    assert not (tmp_path / "out").exists()


def test_the_api_takes_seeds_once_each():
    from specguide.api import generate_seeds, invert_seeds

    with pytest.raises(InputError, match="seed 2 given twice"):
        generate_seeds("a-Si", [2, 2], density_g_cm3=2.33, n_atoms=64)
    with pytest.raises(InputError, match="non-negative integer seeds"):
        invert_seeds("a-Si", ["gr:x.dat"], [], density_g_cm3=2.33, n_atoms=64)
