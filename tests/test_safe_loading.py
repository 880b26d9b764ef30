"""No model file can run code: every loader reads tensors and plain data only and names the file it refuses."""

import os

import pytest
import torch
from typer.testing import CliRunner

from specguide.cli import app
from specguide.pretrained import load_prior, load_site_model, load_surrogate
from specguide.training.loop import load_training_state


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_file(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "specguide-prior", "format_version": 1, "state_dict": {}, "x": _Payload(marker)}, path)
    return path, marker


@pytest.mark.parametrize("loader", [load_prior, load_surrogate, load_site_model, load_training_state])
def test_a_malicious_pickle_is_refused_by_every_loader_and_nothing_runs(evil_file, loader):
    path, marker = evil_file
    with pytest.raises(ValueError) as info:
        loader(path)
    message = str(info.value)
    assert str(path) in message and "weights_only=False" not in message and "could run code" in message
    assert not marker.exists()


def test_the_cli_refuses_a_malicious_site_model_and_a_prior_given_as_site_model(evil_file, tmp_path):
    path, marker = evil_file
    spectrum = tmp_path / "s.dat"
    spectrum.write_text("\n".join(f"{e} {1 + e / 10}" for e in range(-1, 19)))
    runner = CliRunner()
    result = runner.invoke(app, ["sites", "generate", "--model", str(path), "--spectrum", str(spectrum),
                                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "could run code" in result.output and not marker.exists()
    from specguide.pretrained import resolve_prior

    prior_file = resolve_prior("a-Si")
    result = runner.invoke(app, ["sites", "generate", "--model", str(prior_file), "--spectrum", str(spectrum),
                                 "--out", str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 2 and "not a specguide site model" in result.output


def test_safe_loading_reads_the_bundled_models():
    assert load_prior("a-Si")[1]["format"] == "specguide-prior"
    assert load_surrogate("Si-K_EXAFS")[1]["format"] == "specguide-surrogate"
    assert load_site_model("O-K_SiO")[1]["format"] == "specguide-site-model"
