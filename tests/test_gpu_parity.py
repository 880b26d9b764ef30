"""CPU/GPU parity: the same structures give the same observables, scores and guidance on both devices (to 1e-5 of
their scale), the same seed gives the same structures again on the GPU, and sampling on the GPU gives the
statistics sampling on the CPU gives. Skipped without CUDA; ``bench/gpu_check.sh`` runs them on a GPU machine.

CPU and GPU draw different random streams, so their structures differ replica by replica: the sampling comparison is
a Welch t-test over replicas (|t| < 4: a real difference of the ensembles fails it, the spread of two samples of the
same ensemble passes it about 9,999 times in 10,000 for normal data).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import noisy_silicon_frames

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu_check.sh)")

KINDS = ("gr", "pdf", "rdf", "adf", "sq", "fq", "xrd", "nd")


def relative_difference(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


@pytest.mark.parametrize("material", ["a-Si", "a-SiO2"])
@pytest.mark.parametrize("kind", KINDS)
def test_observables_agree_to_1e_5(material, kind):
    from specguide.api import compute_spectrum, example

    atoms = example(material)
    x_cpu, y_cpu, _ = compute_spectrum(atoms, kind, device="cpu")
    x_gpu, y_gpu, _ = compute_spectrum(atoms, kind, device="cuda")
    np.testing.assert_array_equal(x_cpu, x_gpu)
    assert relative_difference(y_cpu, y_gpu) < 1e-5


def test_surrogate_spectrum_agrees_to_1e_5():
    from specguide.api import example, surrogate_spectrum

    atoms = example("a-C")
    _, cpu, _, _ = surrogate_spectrum(atoms, "C-K_XANES", device="cpu")
    _, gpu, _, _ = surrogate_spectrum(atoms, "C-K_XANES", device="cuda")
    assert relative_difference(cpu, gpu) < 1e-5


def test_prior_score_agrees_to_1e_5():
    from specguide.api import example
    from specguide.graph import batch_from_atoms
    from specguide.pretrained import load_prior

    positions, cells, numbers, batch = batch_from_atoms([example("a-Si")], dtype=torch.float32)
    t = torch.tensor([0.3])
    scores = []
    for device in ("cpu", "cuda"):
        network, _ = load_prior("a-Si", map_location=device)
        assert next(network.parameters()).device.type == device
        with torch.no_grad():
            moved = [v.to(device) for v in (positions, cells, numbers, batch, t)]
            scores.append(network(*moved).cpu().numpy())
    assert relative_difference(*scores) < 1e-5


def test_guidance_agrees_to_1e_5():
    from specguide.api import Target, compute_spectrum, example
    from specguide.diffusion.guidance import SpectralGuidance
    from specguide.graph import batch_from_atoms

    atoms = example("a-Si")
    r, g, _ = compute_spectrum(atoms, "gr")
    target = Target.from_arrays("gr", r, g)
    rattled = atoms.copy()
    rattled.rattle(0.2, seed=1)
    positions, cells, numbers, batch = batch_from_atoms([rattled])
    score = torch.zeros_like(positions)
    pulls = []
    for device in ("cpu", "cuda"):
        guidance = SpectralGuidance([target], 30.0, step="normalized")
        moved = [v.to(device) for v in (positions, cells, numbers, batch)]
        t, sigma = torch.tensor([0.1], device=device), torch.tensor([0.08], device=device, dtype=torch.float64)
        pulls.append(guidance(*moved, t, sigma, score.to(device)).cpu().numpy())
    assert relative_difference(*pulls) < 1e-5


def test_the_same_seed_gives_the_same_structures_on_the_gpu():
    from specguide.api import generate

    runs = [generate("a-Si", density_g_cm3=2.33, n_atoms=64, n_replicas=2, steps=16, seed=3, device="cuda",
                     progress=False) for _ in range(2)]  # fmt: skip
    assert runs[0].config["device"].startswith("cuda")
    for a, b in zip(runs[0].structures, runs[1].structures, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)


def replica_statistics(structures) -> dict[str, np.ndarray]:
    """Per replica: fraction of four-fold Si and mean Si–Si bond length (Å) within 2.85 Å."""
    from ase.neighborlist import neighbor_list

    four, bond = [], []
    for atoms in structures:
        i, d = neighbor_list("id", atoms, 2.85)
        four.append(float(np.mean(np.bincount(i, minlength=len(atoms)) == 4)))
        bond.append(float(d.mean()))
    return {"four_fold": np.array(four), "bond_length": np.array(bond)}


def test_gpu_sampling_has_the_statistics_of_cpu_sampling():
    from specguide.api import generate

    settings = dict(density_g_cm3=2.33, n_atoms=216, n_replicas=8, steps=64, preset="fast", progress=False)
    cpu = replica_statistics(generate("a-Si", seed=0, device="cpu", **settings).structures)
    gpu = replica_statistics(generate("a-Si", seed=0, device="cuda", **settings).structures)
    for name in cpu:
        a, b = cpu[name], gpu[name]
        spread = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) < 4 * spread, (name, a, b)


def test_inversion_on_the_gpu_fits_its_target(tmp_path):
    """Guidance works on the GPU: the guided ensemble fits the target better than the unguided one of the same
    sampler settings (both scored on the CPU)."""
    from specguide.api import Target, compute_spectrum, example, generate, invert
    from specguide.graph import batch_from_atoms

    r, g, _ = compute_spectrum(example("a-Si"), "gr")
    target = Target.from_arrays("gr", r, g)
    settings = dict(density_g_cm3=2.33, n_atoms=216, n_replicas=2, steps=64, seed=0, preset="fast", device="cuda")
    result = invert("a-Si", [target], progress=False, **settings)
    plain = generate("a-Si", progress=False, **settings)
    assert result.config["device"].startswith("cuda")
    guided = result.summary["losses"][target.label]["mean"]
    with torch.no_grad():  # scored as invert scores its result: on the CPU, in float64
        unguided = float(target.loss(target.observable(*batch_from_atoms(plain.structures))).mean())
    assert guided < unguided


def test_training_on_the_gpu_records_it(tmp_path):

    from specguide.models.score import ScoreNetworkConfig
    from specguide.pretrained import load_prior
    from specguide.training.loop import TrainingHardware
    from specguide.training.prior import train_prior

    frames = noisy_silicon_frames(6)
    path = train_prior(frames, tmp_path / "p.pt", max_epochs=3, progress=False, hardware=TrainingHardware("cuda"),
                       config=ScoreNetworkConfig(species=(14,), hidden=16, n_layers=2))  # fmt: skip
    network, meta = load_prior(path)
    assert meta["training"]["hardware"]["resolved"]["device"].startswith("cuda")
    assert np.isfinite(meta["training"]["final_val_loss"])
    assert all(torch.isfinite(p).all() for p in network.parameters())


def test_site_generation_on_the_gpu_repeats_with_the_same_seed(tmp_path):
    from specguide.api import sites_generate
    from specguide.sites.dataset import load_site_dataset

    data = load_site_dataset(None)
    spectrum = tmp_path / "site.dat"
    np.savetxt(spectrum, np.column_stack([data.grid, data.spectra[0]]))
    first, _ = sites_generate(spectrum, samples=4, steps=50, seed=2, device="cuda")
    second, _ = sites_generate(spectrum, samples=4, steps=50, seed=2, device="cuda")
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)


def test_analyze_on_the_gpu_gives_the_cpu_delta_ed_and_pair_distributions_to_1e_5(tmp_path):
    """analyze's torch part (partial and weighted g(r), their peaks, RDF bond cutoffs, Delta_ED spectra) on the GPU;
    a two-species glass so the partials and the X-ray/neutron weightings run there too."""
    from specguide.analysis.report import AnalyzeConfig, write_analysis
    from specguide.api import analyze, example

    glass = example("a-SiO2")
    frames = []
    for seed in range(3):
        atoms = glass.copy()
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    runs = {device: analyze(frames[:1], frames[1:], energy=False, max_ring=6, device=device)
            for device in ("cpu", "cuda")}  # fmt: skip
    cpu, gpu = runs["cpu"], runs["cuda"]
    assert cpu.device.type == "cpu" and gpu.device.type == "cuda"
    assert gpu.summary["cutoffs_A"] == cpu.summary["cutoffs_A"]
    for key in ("delta_ed", "error", "diversity"):
        assert set(gpu.summary["delta_ed"][key]) == {"PDF", "ADF", "XRD", "ND"}
        for modality, value in cpu.summary["delta_ed"][key].items():
            assert abs(gpu.summary["delta_ed"][key][modality] - value) < 1e-5, (key, modality)
    for ensemble in ("structures", "reference"):
        ours, theirs = (run.summary if ensemble == "structures" else run.summary["reference"] for run in (gpu, cpu))
        for curve, peaks in theirs["pair_distribution"]["peaks_A"].items():
            for name, value in peaks.items():
                found = ours["pair_distribution"]["peaks_A"][curve][name]
                assert (found is None) == (value is None) and (value is None or abs(found - value) < 1e-5)
        curves = [run.arrays[ensemble]["pair_distribution"] for run in (cpu, gpu)]
        assert relative_difference(*curves) < 1e-5
    write_analysis(tmp_path, gpu, frames[:1], frames[1:], config=AnalyzeConfig(device="cuda").to_dict(), force=True)
    config = json.loads((tmp_path / "config.json").read_text())  # the figure's g(r) was drawn from the GPU too
    assert config["device"] == "cuda" and config["resolved"]["device"].startswith("cuda")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_ddp_over_two_gpus_trains_and_writes_once(tmp_path):
    import ase.build

    import specguide

    frames = noisy_silicon_frames(20)
    ase.io.write(tmp_path / "train.extxyz", frames)
    out = tmp_path / "p.pt"
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(specguide.__file__))}
    command = [sys.executable, "-m", "specguide.cli", "train-prior", str(tmp_path / "train.extxyz"), "--out", str(out),
               "--max-epochs", "2", "--hidden", "16", "--layers", "2", "--device", "cuda", "--devices", "2",
               "--strategy", "ddp"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = torch.load(out, weights_only=True)
    assert meta["training"]["hardware"]["devices"] == 2
    assert np.isfinite(meta["training"]["final_val_loss"])
