"""Re-measure the headline numbers of docs/benchmarks.md (``pytest -m quality``; not in the default run: minutes).

Each test runs the benchmark script's own function with the settings and seed the docs state, and checks the
claim made there. They can fail: the claims are measurements, not targets.
"""

import argparse
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.quality
BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**values) -> argparse.Namespace:
    return argparse.Namespace(**{"replicas": 2, "seed": 0, "preset": "quality", "quiet": True, **values})


@pytest.mark.parametrize("case", ["a-Si:2.5:512", "a-SiO2:2.2:300"])
def test_generate_and_invert_are_realistic_at_their_defaults(case):
    """Issue 29 item 4: four-fold Si ≥ 90 % (a-Si), ≥ 93 % Si four-fold and ≥ 95 % O two-fold (a-SiO2), no pair
    closer than the MD's shortest — for generate and invert at their defaults (bench/defaults.py, seed 0)."""
    defaults = _bench("defaults")
    result = defaults.run_case(case, _args())
    for name, row in result["rows"].items():
        for species, (cn, bar) in result["bars"].items():
            assert row["coordination"][species].get(cn, 0.0) >= bar, (name, species)
        assert not row["shorter_than_md"], name


@pytest.mark.parametrize("dataset", ["silica_nimrod", "silica_epsr", "silica_xray_ag"])
def test_guided_generation_fits_measured_silica_as_well_as_rmc_with_closer_coordination(dataset):
    """Issue 29 done-when: on every data set guided generation fits at least as well as RMC at equal wall time and
    is closer to the literature coordination (bench/experiment.py, 648 atoms × 2, seed 0)."""
    experiment = _bench("experiment")
    case = experiment.run_case(dataset, experiment.DATASETS[dataset], _args(atoms=648))
    ours, rmc = case["rows"]["ours"], case["rows"]["RMC"]
    assert ours["fit_rms"] <= rmc["fit_rms"]
    assert ours["cn_distance_to_literature"] < rmc["cn_distance_to_literature"]


def test_angle_aware_carbon_surrogate_beats_distance_only_at_equal_time(tmp_path):
    """Issue 34 (docs/benchmarks.md, MODELCARD C-K_XANES): on the bundled FEFF C K-edge set, 12 minutes each on one
    thread, the angular network beats the distance-only one on the held-out a-C structures, per atom and per
    structure mean, and its structure-mean error is below the density-group baseline (seed 0)."""
    path = BENCH.parent / "scripts" / "train_carbon_xanes_surrogate.py"
    spec = importlib.util.spec_from_file_location("train_ck", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    common = ["--minutes", "12", "--threads", "1", "--seed", "0"]
    angular = script.main([*common, "--out", str(tmp_path / "angular.pt")])["amorphous"]
    distance = script.main([*common, "--angular-channels", "0", "--out", str(tmp_path / "distance.pt")])["amorphous"]
    assert angular["rel_l2_atom"] < distance["rel_l2_atom"]
    assert angular["rel_l2_structure"] < distance["rel_l2_structure"]
    assert angular["ratio_structure_over_density_mean"] < 1


def test_train_surrogate_on_the_dft_set_beats_the_lookup_per_atom(tmp_path):
    """Issue 34 done-when (docs/benchmarks.md): `specguide --threads 2 train-surrogate --angular-channels 16` on the
    a-C DFT set (../shared) for 20 minutes, seed 0: per-atom error ≤ 0.75× the coordination lookup on its held-out
    amorphous cells (bench/surrogate_accuracy.py score)."""
    from typer.testing import CliRunner

    from specguide.cli import app

    accuracy = _bench("surrogate_accuracy")
    if not accuracy.XANES.is_dir():
        pytest.skip(f"{accuracy.XANES} not present (../shared/data)")
    out = tmp_path / "dft.pt"
    data = ["--structures", str(accuracy.XANES / "structures"), "--spectra", str(accuracy.XANES / "xanes")]
    options = ["--max-time", "20", "--angular-channels", "16", "--out", str(out)]
    args = ["--threads", "2", "train-surrogate", *data, *options]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert accuracy.score(out)["ratio_atom_over_cn_lookup"] <= 0.75


def _run_main(name: str, argv: list[str], monkeypatch) -> None:
    """``bench/<name>.py`` with ``argv``, as from the command line."""
    monkeypatch.setattr("sys.argv", [f"{name}.py", *argv])
    _bench(name).main()


def test_cuzr_prior_keeps_the_icosahedral_fraction_of_held_out_md(tmp_path, monkeypatch):
    """Issue 33 (docs/benchmarks.md, MODELCARD a-CuZr): `python bench/prior_quality_cuzr.py` (quality preset, 4 × 250
    atoms, seed 0, the bundled prior): Cu <0,0,12,0> within 3 points of the held-out MD for Cu64Zr36 and Cu50Zr50,
    the Cu–Cu and Cu–Zr first peaks within 0.03 Å, and for Cu64Zr36 the Zr–Zr peak too (Cu50Zr50's Zr–Zr peak is
    documented as missing that bar, so it is not asserted)."""
    import json

    out = tmp_path / "prior_quality.json"
    _run_main("prior_quality_cuzr", ["--out", str(out)], monkeypatch)
    for composition, row in json.loads(out.read_text())["compositions"].items():
        assert row["bars"]["icosahedral_met"], (composition, row["bars"])
        for pair in ("Cu-Cu", "Cu-Zr") + (("Zr-Zr",) if composition == "Cu64Zr36" else ()):
            assert abs(row["bars"]["partial_peak_delta_A"][pair]) <= 0.03 + 1e-9, (composition, pair, row["bars"])


def test_cuzr_xray_inversion_with_the_quality_preset(tmp_path, monkeypatch):
    """Issue 33 (docs/benchmarks.md): `python bench/invert_cuzr.py --preset quality --compositions Cu64Zr36` (4 × 250
    atoms, seed 0, the bundled prior): the X-ray-S(Q)-guided ensemble is within the MD's spread on every modality
    (Delta_ED ≤ 0), beats the unconditional prior on every modality, holds Cu icosahedra within 3 points of MD and the
    Cu–Cu and Cu–Zr first peaks within 0.03 Å (its Zr–Zr peak is documented as 0.07 Å out, so it is not asserted)."""
    import json

    out = tmp_path / "invert_cuzr.json"
    _run_main("invert_cuzr", ["--preset", "quality", "--compositions", "Cu64Zr36", "--out", str(out)], monkeypatch)
    block = json.loads(out.read_text())["compositions"]["Cu64Zr36"]
    guided, prior = block["rows"]["XRD"], block["rows"]["unconditional"]
    assert all(value <= 0 for value in guided["delta_ed"].values()), guided["delta_ed"]
    assert all(guided["delta_ed"][m] < prior["delta_ed"][m] for m in guided["delta_ed"])
    assert abs(guided["icosahedral_Cu_pct"] - block["md_icosahedral_Cu_pct"]) <= 3
    for pair in ("Cu-Cu", "Cu-Zr"):
        assert abs(guided["first_peak_A"][pair] - block["md_first_peak_A"][pair]) <= 0.03 + 1e-9


def test_the_layering_redesign_changed_no_output():
    """Issue 31 done-when (docs/benchmarks.md): `python bench/same_outputs.py 5514831 0be038e` gives identical
    spectra and atom positions before (5514831) and after (0be038e) the redesign. Later commits may differ: the
    chunked pair sums of issue 32 add in another order, and guided trajectories follow the last bits."""
    import subprocess
    import sys

    repo = BENCH.parent
    for commit in ("5514831", "0be038e"):
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo, capture_output=True).returncode:
            pytest.skip(f"commit {commit} is not in this clone's history")
    lines = subprocess.run([sys.executable, str(BENCH / "same_outputs.py"), "5514831", "0be038e"], cwd=repo, check=True,
                           capture_output=True, text=True).stdout.splitlines()  # fmt: skip
    assert any("gr.dat: max |difference| 0" == line for line in lines), lines
    assert any(line.startswith("xrd.dat: max |difference| 0") for line in lines), lines
    assert sum("max |Δposition| 0 Å" in line and "coordination equal: True" in line for line in lines) == 2, lines


@pytest.mark.parametrize("corrector, si4, o2", [(0, 65.75, 80.5), (4, 88.0, 93.5)])
def test_bundled_silica_prior_gives_its_model_card_coordination(corrector, si4, o2):
    """Issue 33 (MODELCARD a-SiO2, session 38): the bundled prior at 2.2 g/cm³, 4 × 300 atoms, 256 steps, seed 0,
    plain and with 4 corrector steps, gives the four-fold Si and two-fold O fractions of its model card (within 1
    point: thread counts may change the last float bits of a trajectory) — both above the first file's (59.5 / 84.3
    % four-fold Si)."""
    quality = _bench("prior_quality")
    from specguide.diffusion.sampler import generate

    bonds, _, composition = quality.SYSTEMS["SiO2"]
    structures = generate("a-SiO2", density_g_cm3=2.2, n_atoms=300, n_replicas=4, steps=256, seed=0,
                          n_restarts=0, restart_mode="replica", corrector_steps=corrector, progress=False,
                          composition=composition, bond_cutoffs=bonds).structures  # fmt: skip
    measured = quality.metrics(structures, "SiO2")
    assert abs(measured["majority_cn_%"] - si4) <= 1.0
    assert abs(measured["second_majority_%"] - o2) <= 1.0


def test_bundled_site_model_gives_its_model_card_numbers_on_held_out_cristobalite(tmp_path, monkeypatch):
    """Issue 33 (sites DATACARD, "Against issue 33's targets"): `python bench/sites_eval.py --crystal-only
    --train-amorphous a-SiO1_2.15 a-SiO1.5_2.2 --seeds 0 1000 2000 3000 4000 5000` (8 samples, 100 steps): the
    consensus pick's first-shell RMSD is 0.29 Å (the issue's 0.10 Å bar is missed and not asserted), its shell counts
    are exact, its SOAP similarity 0.995, and it beats the template on 92 % of sites (the bar: 60 %)."""
    import json

    import numpy as np

    out = tmp_path / "sites_eval.json"
    seeds = ["0", "1000", "2000", "3000", "4000", "5000"]
    argv = ["--crystal-only", "--train-amorphous", "a-SiO1_2.15", "a-SiO1.5_2.2", "--seeds", *seeds, "--out", str(out)]
    _run_main("sites_eval", argv, monkeypatch)
    runs = json.loads(out.read_text())["runs"]
    summaries = [run["held-out crystal, predicted atom count"]["summary"] for run in runs.values()]
    pick = [s["model_consensus"] for s in summaries]
    assert abs(np.mean([p["rmsd_shell1"] for p in pick]) - 0.288) <= 0.01
    assert np.mean([p["cn_error_shell1"] for p in pick]) == 0.0
    assert abs(np.mean([s["model_consensus"]["soap"] for s in summaries]) - 0.995) <= 0.002
    assert abs(np.mean([s["model_consensus_beats_template"] for s in summaries]) - 0.922) <= 0.03
