"""The CLI under bad input and interruption: checked before any work, one line, nothing half-written, resumable."""

import json

import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from specguide.cli import app
from specguide.diffusion.sampler import SamplerCheckpoint
from specguide.io import OutputDirectory

runner = CliRunner()


@pytest.fixture(scope="module")
def gr_file(tmp_path_factory):
    from specguide.api import compute_spectrum
    from specguide.pretrained import load_md_dataset

    folder = tmp_path_factory.mktemp("robust")
    ase.io.write(folder / "ref.extxyz", load_md_dataset("a-Si_2.5", split="test")[0])
    x, y, _ = compute_spectrum(folder / "ref.extxyz", "gr", r_max=5.0)
    path = folder / "gr.dat"
    np.savetxt(path, np.column_stack([x, y]), header="r g(r)")
    return path


def _invert(gr_file, out, *extra):
    args = ["invert", "--prior", "a-Si", "--target", f"gr:{gr_file}", "--density", "2.5", "--atoms", "64",
            "--replicas", "2", "--steps", "72", "--corrector-steps", "1", "--restarts", "1", "--seed", "5",
            "--out", str(out), *extra]  # fmt: skip
    return runner.invoke(app, args)


def test_an_interrupted_invert_resumes_to_the_structures_of_an_uninterrupted_run(gr_file, tmp_path, monkeypatch):
    whole = _invert(gr_file, tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    original = SamplerCheckpoint.save

    def interrupt(self, call, partial, state):
        original(self, call, partial, state)
        if partial and state["step"] == 32 and "guided" in str(self.folder):
            raise KeyboardInterrupt

    monkeypatch.setattr(SamplerCheckpoint, "save", interrupt)
    stopped = _invert(gr_file, tmp_path / "cut")
    assert stopped.exit_code == 130 and "--resume" in stopped.output and not (tmp_path / "cut").exists()
    monkeypatch.setattr(SamplerCheckpoint, "save", original)
    fresh = _invert(gr_file, tmp_path / "cut")  # a new run would discard the finished work: refused without --force
    assert fresh.exit_code == 2 and "--resume" in fresh.output
    other = _invert(gr_file, tmp_path / "cut", "--steps", "64", "--resume")  # other settings cannot continue it
    assert other.exit_code == 2 and "other settings" in other.output
    resumed = _invert(gr_file, tmp_path / "cut", "--resume")
    assert resumed.exit_code == 0, resumed.output
    for a, b in zip(ase.io.read(tmp_path / "whole" / "structures.extxyz", ":"),
                    ase.io.read(tmp_path / "cut" / "structures.extxyz", ":"), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a.positions, b.positions)
    assert not (tmp_path / "cut" / "checkpoints").exists() and not (tmp_path / ".cut.partial").exists()


def test_outputs_are_checked_and_locked_before_any_work_and_force_replaces_a_result_whole(gr_file, tmp_path):
    (tmp_path / "afile").write_text("")
    result = _invert(gr_file, tmp_path / "afile" / "sub")
    assert result.exit_code == 2 and "is a file" in result.output
    out = tmp_path / "run"
    with OutputDirectory(out):  # another run (here: this process) holds the folder
        busy = _invert(gr_file, out)
    assert busy.exit_code == 2 and "another specguide run" in busy.output
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    assert _invert(gr_file, out).exit_code == 2  # exists: needs --force
    forced = runner.invoke(app, ["generate", "--prior", "a-Si", "--density", "2.5", "--atoms", "64", "--steps", "4",
                                 "--preset", "fast", "--out", str(out), "--force"])  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert not (out / "stale.txt").exists() and (out / "structures.extxyz").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--prior", "a-Si", "--density", "1000", "--atoms", "64"], "far outside"),
        (["generate", "--prior", "a-Si", "--density", "2.3", "--atoms", "3"], "at least"),
        (["generate", "--prior", "a-Si", "--density", "2.3", "--atoms", "10000000"], "GiB"),
        (
            ["md", "melt-quench", "--element", "Si", "--density", "2.3", "--atoms", "64", "--quench-rate", "-5"],
            "positive",
        ),
        (["spectrum", "{structure}", "--kind", "gr", "--sigma", "-1"], "--sigma"),
        (["spectrum", "{structure}", "--kind", "gr", "--dr", "0"], "--dr"),
        (["spectrum", "{structure}", "--kind", "sq", "--q-min", "10", "--q-max", "2"], "q-min"),
        (["spectrum", "{structure}", "--kind", "gr", "--sigma", "1e-30"], "--sigma ≥"),  # σ/2 sub-grid: TB
        (["spectrum", "{structure}", "--kind", "gr", "--sigma", "3e11"], "wider than"),  # 6σ kernel: TB
        (["spectrum", "{structure}", "--kind", "sq", "--dq", "1e-12"], "--dq ≥"),
        (["spectrum", "{structure}", "--kind", "gr", "--dr", "1e-5"], "--dr ≥"),  # a 6σ kernel of 180k taps: 4 TB
        (["example", "a-Si", "--out", "{afile}/x"], "is a file"),
        (["invert", "--prior", "a-Si", "--target", "gr:{gr8}", "--density", "2.33", "--atoms", "8"], "atoms"),
        (["analyze", "{structure}", "--reference", "{silica}", "--no-energy"], "same elements"),
    ],
)
def test_nonsense_is_refused_before_any_work_with_one_line(tmp_path, args, message):
    from specguide.pretrained import load_md_dataset

    structure, silica, afile = tmp_path / "si.extxyz", tmp_path / "sio2.extxyz", tmp_path / "afile"
    ase.io.write(structure, load_md_dataset("a-Si_2.5", split="test")[0])
    ase.io.write(silica, load_md_dataset("a-SiO2_2.2", split="test")[0])
    afile.write_text("")
    r = np.arange(1, 800) * 0.01  # a g(r) reaching 8 Å: an 8-atom cell (pairs to 2.7 Å) cannot fit it
    np.savetxt(tmp_path / "gr8.dat", np.column_stack([r, 1 + np.exp(-((r - 2.35) ** 2) / 0.01) * (r > 2)]))
    args = [a.format(structure=structure, silica=silica, afile=afile, gr8=tmp_path / "gr8.dat") for a in args]
    if args[0] in ("generate", "md", "analyze", "invert"):
        args += ["--out", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_json_outputs_are_valid_json_and_element_lists_survive_the_console(tmp_path):
    from specguide.io import write_json

    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.0, None]}
    result = runner.invoke(app, ["generate", "--prior", "a-Si", "--density", "2.3", "--atoms", "64",
                                 "--composition", "Cu", "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "['Cu']" in result.output


def test_a_guided_run_that_keeps_exploding_says_which_options_calm_it(gr_file, tmp_path):
    """Too few steps for too strong a pull: every re-initialised try explodes, and the error names the fix."""
    args = ["invert", "--prior", "a-Si", "--target", f"gr:{gr_file}", "--density", "2.5", "--atoms", "64",
            "--replicas", "1", "--steps", "8", "--strength", "3000", "--preset", "fast",
            "--out", str(tmp_path / "x")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "exploding" in result.output, result.output
    assert "--steps" in result.output and "--strength" in result.output
    assert not (tmp_path / "x").exists()  # nothing half-written where the result would go
