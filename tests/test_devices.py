"""``--device auto|cpu|cuda[:k]``: resolution and its errors, generators on the device, the option on every command
that computes, the device recorded next to results, and Lightning's hardware settings (``--devices``,
``--strategy``). Runs on the CPU; the CPU/GPU parity tests are in ``tests/test_gpu_parity.py``."""

import json

import ase.build
import ase.io
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from specguide.cli import app
from specguide.devices import device_record, resolve_device, seeded_generator
from specguide.io import InputError
from specguide.training.loop import TrainingHardware

runner = CliRunner()
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")


@pytest.fixture
def two_fake_gpus(monkeypatch):
    """torch as if it saw two GPUs (only the resolution logic runs; nothing is computed on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_cpu_and_auto_resolve_to_the_cpu_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == expected


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cpu:1", "cuda:x", "cuda:", "", "mps"])
def test_unknown_devices_are_refused_naming_the_choices(spec):
    with pytest.raises(InputError, match=r"--device .*give auto, cpu, cuda or cuda:K"):
        resolve_device(spec)


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_names_the_fix(spec):
    with pytest.raises(InputError) as raised:
        resolve_device(spec)
    message = str(raised.value)
    assert message.startswith(f"--device {spec}:") and "install a CUDA build of torch" in message
    assert "--device cpu" in message


def test_gpu_indices_are_checked_against_the_gpus_torch_sees(two_fake_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"--device cuda:2: torch sees 2 GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_a_cpu_generator_draws_the_stream_it_always_drew():
    """CPU results stay bit-identical: the device's generator on the CPU is torch's default CPU generator."""
    ours = torch.randn(1000, generator=seeded_generator(7, "cpu"))
    before = torch.randn(1000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(ours, before)
    assert not torch.equal(ours, torch.randn(1000, generator=seeded_generator(8)))
    assert device_record(torch.device("cpu")) == {"device": "cpu"}


def test_training_hardware_maps_to_lightnings_arguments(two_fake_gpus):
    assert TrainingHardware("cpu").trainer_arguments() == {"accelerator": "cpu", "devices": 1, "strategy": "auto"}
    assert TrainingHardware("cuda", 2, "ddp").trainer_arguments() == {"accelerator": "gpu", "devices": 2,
                                                                      "strategy": "ddp"}  # fmt: skip
    assert TrainingHardware("cuda:1").trainer_arguments() == {"accelerator": "gpu", "devices": [1],
                                                              "strategy": "auto"}  # fmt: skip
    with pytest.raises(InputError, match="names one GPU; give --device cuda with --devices 2"):
        TrainingHardware("cuda:1", 2, "ddp").trainer_arguments()
    with pytest.raises(InputError, match=r"--devices 4: torch sees 2 GPU\(s\)"):
        TrainingHardware("cuda", 4, "ddp").trainer_arguments()
    with pytest.raises(InputError, match="--strategy fsdp: choose one of auto, ddp"):
        TrainingHardware("cuda", 2, "fsdp")
    with pytest.raises(InputError, match="--devices 0"):
        TrainingHardware("cpu", 0)


# ----------------------------------------------------------------------------------------------------------------
# the option on the commands
# ----------------------------------------------------------------------------------------------------------------

GENERATE = ["generate", "--prior", "a-Si", "--density", "2.33", "--atoms", "64", "--replicas", "2", "--steps", "4",
            "--seed", "5", "--preset", "fast"]  # fmt: skip


def test_generate_on_cpu_and_auto_gives_the_same_structures_and_records_the_device(tmp_path):
    runs = {}
    for name, extra in (("cpu", ["--device", "cpu"]), ("auto", [])):
        result = runner.invoke(app, [*GENERATE, *extra, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        config = json.loads((tmp_path / name / "config.json").read_text())
        runs[name] = (ase.io.read(tmp_path / name / "structures.extxyz", ":"), config)
    assert runs["cpu"][1]["device"] == "cpu" and runs["cpu"][1]["generate"]["device"] == "cpu"
    assert runs["auto"][1]["generate"]["device"] == "auto"
    if not torch.cuda.is_available():
        assert runs["auto"][1]["device"] == "cpu"
        for a, b in zip(runs["cpu"][0], runs["auto"][0], strict=True):
            np.testing.assert_array_equal(a.positions, b.positions)
    # a rerun from config.json keeps the device asked for; --device replaces it
    rerun = runner.invoke(app, ["generate", "--config", str(tmp_path / "auto" / "config.json"), "--device", "cpu",
                                "--out", str(tmp_path / "again")])  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["generate"]["device"] == "cpu" and again["device"] == "cpu"


@pytest.fixture(scope="module")
def inputs(rattled_silicon):
    """A structure, its g(r) target and a site spectrum for the commands' error paths."""
    root = rattled_silicon
    np.savetxt(root / "site.dat", np.column_stack([np.linspace(-5, 25, 60), np.exp(-(np.linspace(-3, 3, 60) ** 2))]))
    return root


def commands(root, out):
    structure, target = str(root / "seed.extxyz"), f"gr:{root / 'gr.dat'}"
    return {
        "generate": GENERATE + ["--out", out],
        "invert": ["invert", "--prior", "a-Si", "--target", target, "--density", "2.33", "--atoms", "64", "--out", out],
        "demo": ["demo", "--out", out],
        "spectrum": ["spectrum", structure, "--kind", "gr", "--out", out],
        "train-prior": ["train-prior", structure, "--out", out, "--max-epochs", "1"],
        "train-surrogate": ["train-surrogate", "--structures", structure, "--out", out, "--max-epochs", "1"],
        "sites train": ["sites", "train", "--out", out, "--max-steps", "1"],
        "sites generate": ["sites", "generate", "--spectrum", str(root / "site.dat"), "--out", out],
        "sites evaluate": ["sites", "evaluate", "--out", out, "--max-sites", "1"],
        "analyze": ["analyze", structure, "--out", out, "--no-energy"],
    }


COMMANDS = ["generate", "invert", "demo", "spectrum", "train-prior", "train-surrogate", "sites train",
            "sites generate", "sites evaluate", "analyze"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_computing_command_refuses_an_unknown_device_before_any_work(command, inputs, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [*commands(inputs, str(out))[command], "--device", "tpu"])
    assert result.exit_code == 2, result.output
    assert "--device tpu: not a device specguide can use; give auto, cpu, cuda or cuda:K" in result.output
    assert not out.exists()


@no_cuda
@pytest.mark.parametrize("command", COMMANDS)
def test_every_computing_command_says_how_to_get_cuda(command, inputs, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [*commands(inputs, str(out))[command], "--device", "cuda"])
    assert result.exit_code == 2, result.output
    assert "install a CUDA build of torch" in result.output and "--device cpu" in result.output
    assert not out.exists()


@pytest.mark.parametrize("command", ["train-prior", "train-surrogate"])
def test_training_refuses_hardware_it_cannot_use(command, inputs, tmp_path):
    out = str(tmp_path / "out.pt")
    base = commands(inputs, out)[command]
    result = runner.invoke(app, [*base, "--strategy", "fsdp"])
    assert result.exit_code == 2 and "--strategy fsdp: choose one of auto, ddp" in result.output
    result = runner.invoke(app, [*base, "--devices", "0"])
    assert result.exit_code == 2 and "--devices 0: give a positive number" in result.output


def test_spectrum_on_the_cpu_device_is_the_spectrum(inputs, tmp_path):
    from specguide.api import compute_spectrum

    x, y, _ = compute_spectrum(inputs / "seed.extxyz", "sq")
    x2, y2, _ = compute_spectrum(inputs / "seed.extxyz", "sq", device="auto")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(y2, y, rtol=0, atol=1e-5 * np.abs(y).max())
    result = runner.invoke(app, ["spectrum", str(inputs / "seed.extxyz"), "--kind", "sq", "--device", "cpu",
                                 "--out", str(tmp_path / "sq.dat")])  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.loadtxt(tmp_path / "sq.dat")[:, 1], y, rtol=1e-7, atol=1e-12)  # %.8g columns


def test_a_trained_prior_records_where_it_trained(tmp_path):
    from specguide.pretrained import load_prior
    from specguide.training.prior import train_prior

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(3):
        atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True)
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    from specguide.models.score import ScoreNetworkConfig

    config = ScoreNetworkConfig(species=(14,), hidden=8, n_layers=1, cutoff=3.0)
    path = train_prior(frames, tmp_path / "p.pt", max_steps=2, config=config, progress=False,
                       hardware=TrainingHardware("cpu"))  # fmt: skip
    network, meta = load_prior(path, map_location="auto")
    assert meta["training"]["hardware"] == {"device": "cpu", "devices": 1, "strategy": "auto",
                                            "resolved": {"device": "cpu"}}  # fmt: skip
    assert next(network.parameters()).device == resolve_device("auto")


@pytest.mark.slow
def test_ddp_over_two_cpu_processes_validates_the_whole_set_and_writes_once(tmp_path):
    """``--devices 2 --strategy ddp`` (two CPU processes, gloo: the code path of several GPUs): each process validates
    its share of the two validation structures, the recorded loss is that of both (recomputed here structure by
    structure, as each process drew its noise), not of the first process's share alone."""
    import os
    import subprocess
    import sys

    import specguide
    from specguide.pretrained import load_prior
    from specguide.training.loop import StructureDataset, collate_structures, split_by_structure
    from specguide.training.prior import ScorePriorModule

    rng = np.random.default_rng(0)
    _, val_indices = split_by_structure(20, 0.1, 0)  # val_fraction 0.1: two validation structures, one per process
    frames = []
    for k in range(20):  # the second validation structure twice as large, so that the two losses differ
        atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat((2 if k == val_indices[1] else 1, 1, 1))
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    ase.io.write(tmp_path / "train.extxyz", frames)
    out = tmp_path / "p.pt"
    source = os.path.dirname(os.path.dirname(specguide.__file__))
    env = {**os.environ, "PYTHONPATH": source, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "specguide.cli", "train-prior", str(tmp_path / "train.extxyz"), "--out", str(out),
               "--max-epochs", "1", "--hidden", "8", "--layers", "1", "--device", "cpu", "--devices", "2",
               "--strategy", "ddp"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count(f"wrote {out}") == 2  # both processes finished the command
    network, meta = load_prior(out)
    training = meta["training"]
    assert training["hardware"] == {"device": "cpu", "devices": 2, "strategy": "ddp", "resolved": {"device": "cpu"}}

    assert len(val_indices) == 2 and meta["data"]["n_val"] == 2
    module = ScorePriorModule(network.config)
    module.ema_net.load_state_dict(network.state_dict())
    per_structure = []
    for index in val_indices:  # process k validates structure k as its batch 0
        module.on_validation_epoch_start()
        module.validation_step(collate_structures(StructureDataset([frames[index]]).items), 0)
        per_structure.append((module._val_sums.clone(), module._val_counts.clone()))
    sums, counts = (sum(parts) for parts in zip(*per_structure, strict=True))
    recorded = np.array(list(training["val_loss_by_t"].values()))
    np.testing.assert_allclose(recorded, (sums / counts).numpy(), rtol=1e-6)
    first_only = (per_structure[0][0] / per_structure[0][1]).numpy()
    assert np.abs(recorded - first_only).max() > 1e-3  # the check can tell one share from the whole
