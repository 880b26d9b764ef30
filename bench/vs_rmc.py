"""Guided diffusion vs reverse Monte Carlo on the same targets (issue 7): Delta_ED per modality, coordination, time.

    python bench/vs_rmc.py                    # the full benchmark: a-Si and a-C at 1.5–3.5 g/cm³
    python bench/vs_rmc.py --quick            # one density per material, 2 replicas, 64 steps
    python bench/vs_rmc.py [--materials a-Si a-C] [--densities 1.5 2.0 2.5 3.0 3.5] [--replicas 4] [--steps 256]
                          [--strength 100] [--corrector-steps 4] [--restarts N --restart-mode replica|local]

For each material and density with a bundled MD set (``specguide.pretrained.load_md_dataset``):

- targets: mean spectra of the *held-out* MD replicas (``split="test"``); the reference ensemble for Delta_ED and
  coordination is the whole MD set (12 replicas);
- rows: ``unconditional`` (prior alone), ``PDF`` / ``XRD`` / ``ND`` / ``ADF`` / ``EXAFS`` (guided inversion with
  that single target, :func:`specguide.diffusion.inversion.invert`, two-stage; EXAFS only where a bundled surrogate
  exists: a-Si, ``Si-K_EXAFS``), ``RMC-random`` and ``RMC-liquid``
  (:func:`specguide.baselines.rmc.rmc_refine` on the g(r) target from a random start, or from a 1 ps liquid at
  5000 K made with the shipped classical potential; the liquid MD counts against RMC's time). RMC gets the
  PDF-guided run's wall time in total (split evenly over its replicas). RMC fits the unbroadened histogram g(r)
  (0.05 Å bins, :func:`specguide.baselines.rmc.histogram_target`) of the same held-out replicas, because its
  model curve is an unbroadened histogram; the guided run fits their Gaussian-broadened g(r) (σ = 0.15 Å);
- columns: Delta_ED = error − diversity for g(r) (PDF), bond angles (ADF), X-ray (XRD) and neutron (ND) intensities,
  and for a-Si the Si K-edge EXAFS k²χ(k) of the bundled surrogate (structure mean over all Si,
  :class:`specguide.observables.surrogate.SurrogateSpectrum`; computed the same way for the MD reference, so it
  compares structures through the surrogate, not against FEFF); coordination fractions (cutoff Si–Si 2.85 Å, C–C 1.85
  Å); wall time. The error is taken against the mean spectra of the held-out replicas the targets came from (the truth
  of this inversion), the diversity is the spread of all 12 MD replicas (≤ 0: within the spread of one cell);
  ``delta_ed_vs_md_mean`` repeats the scores against the 12-replica mean (GLASS's reference when the target is that
  mean). The ``held-out MD`` line scores the truth itself: it is the best reachable score on the first block, and
  shows on the second how far the measured cells' own unfitted spectra sit from the ensemble mean (at a-C 1.5 g/cm³
  their X-ray intensity at Q = 1 Å⁻¹ is 1.2 MD standard deviations below it). The verdict uses the first block.

Guided rows: ξ = 100 (``--strength``; the EXAFS row ξ = 30, ``--surrogate-strength``, the value
``bench/exafs_invert.py`` validated: at 100 the a-Si 1.5 g/cm³ replicas diverge; ``--quick`` leaves the row out, as
it diverges in 64 steps at ξ 10 and 30), 4 Langevin corrector steps per step; a-C also gets 6 local restarts (C
outside CN 2–4 re-noised), a-Si none, because its CN 3–4 restart range would treat the 5-fold Si of the 3.0–3.5
g/cm³ MD as defects (``--restarts``/``--restart-mode`` override both).

Priors: ``--silicon-prior`` and ``--carbon-prior``, bundled names or checkpoint paths (default the bundled
``a-Si-all`` and ``a-C``, both trained at 1.5–3.5 g/cm³; ``--silicon-prior a-Si`` is the 2.5-only prior of the
out-of-distribution test). Writes
``bench/results/vs_rmc[_quick].json`` (with the settings and seeds) and a heatmap ``.png``; ``--save-structures
DIR`` also keeps every row's structures as ``DIR/<case>_<row>.extxyz``. A guided row whose sampler gives up
(non-finite score after re-initialisations) is listed under ``failed_rows`` and the other rows still run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

from specguide.analysis.delta_ed import MODALITIES, benchmark_observables, delta_ed, spectra_of
from specguide.analysis.structure import coordination
from specguide.baselines.rmc import histogram_target, liquid_start, random_start, rmc_refine
from specguide.chemistry import DEFAULT_CUTOFFS
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampler import generate
from specguide.io import write_atomically, write_json
from specguide.observables.surrogate import SurrogateSpectrum
from specguide.observables.target import Target
from specguide.pretrained import list_md_datasets, load_md_dataset, load_prior, resolve_prior

GUIDED = ("PDF", "XRD", "ND", "ADF", "EXAFS")
SURROGATES = {"a-Si": {"EXAFS": "Si-K_EXAFS"}}  # bundled surrogate modalities per material (none for a-C)
RESTARTS = {"a-Si": (0, "replica"), "a-C": (6, "local")}  # (cycles, mode) unless --restarts is given
ROWS = ("unconditional", *GUIDED, "RMC-random", "RMC-liquid")
FITTED = {**{m: m for m in GUIDED}, "RMC-random": "PDF", "RMC-liquid": "PDF"}


def run_case(material: str, density: float, prior: str, network, args, rng_seed: int) -> dict | None:
    element = material.split("-")[1]
    name = f"{material}_{density:.1f}"
    if name not in list_md_datasets():
        print(f"{name}: no bundled MD data; skipped")
        return None
    reference = load_md_dataset(name)
    held_out = load_md_dataset(name, split="test")
    n_atoms = len(held_out[0])
    half = float(min(a.cell.lengths().min() for a in reference)) / 2
    cutoff = {(element, element): DEFAULT_CUTOFFS[(element, element)]}
    observables = benchmark_observables(half, DEFAULT_CUTOFFS[(element, element)])
    surrogate_rows = SURROGATES.get(material, {})
    observables |= {m: SurrogateSpectrum(name) for m, name in surrogate_rows.items()}
    reference_spectra = {m: spectra_of(reference, o) for m, o in observables.items()}
    truth_spectra = {m: spectra_of(held_out, o) for m, o in observables.items()}
    targets = {m: Target(o, truth_spectra[m].mean(0), label=m, kind=o.kind) for m, o in observables.items()}
    rmc_target = histogram_target(held_out, r_max=observables["PDF"].r_max, dr=0.05)
    md_cn = coordination(reference, cutoff)["species"][element]
    restarts, restart_mode = restart_settings(material, args)
    common = dict(preset="fast", density_g_cm3=density, n_atoms=n_atoms, n_replicas=args.replicas, steps=args.steps,
                  seed=rng_seed,
                  corrector_steps=args.corrector_steps, n_restarts=restarts, restart_mode=restart_mode,
                  progress=False)  # fmt: skip

    def scores(structures: list) -> dict:
        generated = {m: spectra_of(structures, o) for m, o in observables.items()}
        on_truth = {m: delta_ed(reference_spectra[m], g, truth_spectra[m]) for m, g in generated.items()}
        on_mean = {m: delta_ed(reference_spectra[m], g)["delta_ed"] for m, g in generated.items()}
        by_key = {key: {m: v[key] for m, v in on_truth.items()} for key in ("delta_ed", "error", "diversity")}
        return {**by_key, "delta_ed_vs_md_mean": on_mean}

    held_out_row = {**scores(held_out), "coordination": coordination(held_out, cutoff)["species"][element]}
    rows: dict = {}
    failed: dict = {}  # row -> the sampler's error
    budget = None
    for row in args.rows:
        start = time.perf_counter()
        extra: dict = {}
        if row == "unconditional":
            structures = generate(network, **common).structures
        elif row in GUIDED and row not in targets:
            print(f"{name} {row}: no bundled surrogate for {material}; skipped")
            continue
        elif row in GUIDED:
            try:
                structures = invert(
                    prior,
                    [targets[row]],
                    strength=args.surrogate_strength if row in surrogate_rows else args.strength,
                    schedule=args.schedule,
                    t_guide=args.t_guide,
                    **common,
                ).structures
            except RuntimeError as error:  # the sampler gave up (non-finite score): report it, run the other rows
                failed[row] = str(error)
                print(f"{name} {row}: failed: {error}")
                continue
        else:
            if budget is None:
                print(f"{name} {row}: needs the PDF-guided row first (its wall time is RMC's budget); skipped")
                continue
            per_replica = budget / args.replicas
            structures, moves = [], []
            for k in range(args.replicas):
                t0 = time.perf_counter()
                if row == "RMC-random":
                    begin = random_start(element, density, n_atoms, seed=rng_seed + k)
                else:
                    begin = liquid_start(element, density, n_atoms, seed=rng_seed + k, melt_ps=args.melt_ps)
                left = per_replica - (time.perf_counter() - t0)
                if left <= 0:
                    print(f"{name} {row}: the liquid start alone took longer than RMC's budget; RMC gets 0.5 s")
                result = rmc_refine(begin, [rmc_target], max_seconds=max(left, 0.5), seed=rng_seed + k)
                structures.append(result.structure)
                moves.append(result.moves_tried)
            extra = {"rmc_moves_per_replica": moves, "rmc_seconds_budget": budget}
        seconds = time.perf_counter() - start
        if row == "PDF":
            budget = seconds
        fractions = coordination(structures, cutoff)["species"].get(element, {})
        rows[row] = {**scores(structures), "coordination": fractions, "seconds": seconds, "fitted": FITTED.get(row),
                     **extra}  # fmt: skip
        if args.save_structures is not None:
            path = args.save_structures / f"{name}_{row}.extxyz"
            write_atomically(path, lambda tmp: ase.io.write(tmp, structures, format="extxyz"))
        cells = " ".join(f"{m}={v:+.4f}" for m, v in rows[row]["delta_ed"].items())
        cn4 = 100 * fractions.get("4", 0.0)
        print(f"{name} {row:13s} {cells}  CN4 {cn4:5.1f}% (MD {100 * md_cn.get('4', 0):.1f}%)  {seconds:6.1f} s",
              flush=True)  # fmt: skip
    return {"rows": rows, "held_out_md": held_out_row, "md_coordination": md_cn, "n_atoms": n_atoms,
            "n_reference": len(reference), "n_held_out": len(held_out), "failed_rows": failed}  # fmt: skip


def restart_settings(material: str, args) -> tuple[int, str]:
    """Restart cycles and mode for ``material``: ``--restarts``/``--restart-mode`` when given, else RESTARTS."""
    cycles, mode = RESTARTS[material]
    return (cycles if args.restarts is None else args.restarts), (args.restart_mode or mode)


def verdict(block: dict) -> dict:
    """Does PDF-guided generation beat both RMC rows on every modality it did not fit, at ≤ their wall time,
    with coordination fractions closer to MD (L1 distance)?"""
    rows, md = block["rows"], block["md_coordination"]
    if "PDF" not in rows:
        return {}

    def distance(fractions: dict) -> float:
        keys = set(fractions) | set(md)
        return float(sum(abs(fractions.get(k, 0.0) - md.get(k, 0.0)) for k in keys))

    out = {}
    guided = rows["PDF"]
    for rmc_row in ("RMC-random", "RMC-liquid"):
        if rmc_row not in rows:
            continue
        other = rows[rmc_row]
        unfitted = [m for m in guided["delta_ed"] if m != "PDF"]
        out[rmc_row] = {
            "better_unfitted": {m: guided["delta_ed"][m] < other["delta_ed"][m] for m in unfitted},
            "coordination_L1": {"guided": distance(guided["coordination"]), "rmc": distance(other["coordination"])},
            "guided_seconds": guided["seconds"],
            "rmc_seconds": other["seconds"],
        }
        out[rmc_row]["holds"] = bool(
            all(out[rmc_row]["better_unfitted"].values())
            and out[rmc_row]["coordination_L1"]["guided"] < out[rmc_row]["coordination_L1"]["rmc"]
            and guided["seconds"] <= other["seconds"] * 1.05
        )
    return out


def mean_cn(fractions: dict) -> float:
    """Mean coordination number from ``{"4": f, ...}``."""
    return sum(int(k) * f for k, f in fractions.items())


def modalities_of(results: dict) -> list[str]:
    """The modalities scored in any case, in order (EXAFS only where a bundled surrogate exists)."""
    names = [m for block in results["cases"].values() for row in block["rows"].values() for m in row["delta_ed"]]
    return list(dict.fromkeys([*MODALITIES, *names]))


def print_table(results: dict) -> None:
    print("\nDelta_ED: error against the held-out replicas (the targets' truth), then against the 12-replica MD mean;"
          " diversity = spread of the 12 replicas (≤ 0: within it); CN fractions in %; wall time in s")  # fmt: skip
    columns = modalities_of(results)
    print(f"{'case':12s} {'row':13s} " + " ".join(f"{m:>8s}" for m in columns) + " |"
          + " ".join(f"{m + '(MD)':>9s}" for m in columns) + "    CN3    CN4    CN5  <CN>   time")  # fmt: skip

    def cells(scores: dict | None, width: int = 8) -> str:
        return " ".join(f"{scores[m]:+{width}.4f}" if scores and m in scores else f"{'—':>{width}s}" for m in columns)

    def line(case: str, row: str, values: dict, seconds: str) -> str:
        if "delta_ed_vs_md_mean" in values:
            truth, md_mean = cells(values["delta_ed"]), cells(values["delta_ed_vs_md_mean"], 9)
        else:  # results written before 2026-11-24 scored against the 12-replica mean only
            truth, md_mean = cells(None), cells(values["delta_ed"], 9)
        cn = " ".join(f"{100 * values['coordination'].get(k, 0):6.1f}" for k in ("3", "4", "5"))
        return f"{case:12s} {row:13s} {truth} |{md_mean} {cn} {mean_cn(values['coordination']):5.2f} {seconds}"

    for case, block in results["cases"].items():
        md = block["md_coordination"]
        print(f"{case:12s} {'MD (12)':13s} " + " " * (19 * len(columns) + 1)
              + " ".join(f"{100 * md.get(k, 0):6.1f}" for k in ("3", "4", "5")) + f" {mean_cn(md):5.2f}")  # fmt: skip
        if "held_out_md" in block:
            print(line(case, "held-out MD", block["held_out_md"], "     —"))
        for row, values in block["rows"].items():
            print(line(case, row, values, f"{values['seconds']:6.1f}"))
        for row, error in block.get("failed_rows", {}).items():
            print(f"{case:12s} {row:13s} failed: {error}")
        for rmc_row, v in block.get("verdict", {}).items():
            print(f"{case:12s} PDF-guided vs {rmc_row}: beats it on unfitted {v['better_unfitted']}, coordination L1 "
                  f"{v['coordination_L1']['guided']:.3f} vs {v['coordination_L1']['rmc']:.3f} -> "
                  f"{'HOLDS' if v['holds'] else 'does NOT hold'}")  # fmt: skip


def plot(results: dict, path: Path) -> None:
    from specguide.plotting import plt, save_figure

    cases = list(results["cases"])
    if not cases:
        return
    columns = min(len(cases), 5)  # one row per material at the five bundled densities
    grid_rows = -(-len(cases) // columns)
    figure, axes = plt.subplots(grid_rows, columns, figsize=(5.2 * columns, 3.6 * grid_rows), squeeze=False,
                                layout="constrained")  # fmt: skip
    for axis in axes.flat[len(cases) :]:
        axis.set_visible(False)

    def shown_rows(block: dict) -> dict:  # the held-out truth first: the best score reachable
        return {**({"held-out MD": block["held_out_md"]} if "held_out_md" in block else {}), **block["rows"]}

    values = [x for c in cases for v in shown_rows(results["cases"][c]).values() for x in v["delta_ed"].values()]
    limit = max(abs(v) for v in values) or 1.0
    for axis, case in zip(axes.flat, cases):
        shown = shown_rows(results["cases"][case])
        rows = list(shown)
        columns = list(shown[rows[0]]["delta_ed"])
        grid = np.array([[shown[r]["delta_ed"][m] for m in columns] for r in rows])
        image = axis.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        axis.set_xticks(range(len(columns)), columns)
        labels = [f"{r} ({shown[r]['seconds']:.0f} s)" if "seconds" in shown[r] else r for r in rows]
        axis.set_yticks(range(len(rows)), labels)
        axis.set_title(case, fontsize=10)
        for (k, j), value in np.ndenumerate(grid):
            fitted = shown[rows[k]].get("fitted") == columns[j]
            axis.text(j, k, f"{value:+.3f}" + ("*" if fitted else ""), ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axes.ravel().tolist(), label="Delta_ED (error − diversity); * = fitted modality")
    reference = "held-out MD" if all("held_out_md" in b for b in results["cases"].values()) else "12-replica MD mean"
    figure.suptitle(
        f"guided diffusion vs RMC (equal wall time to the PDF-guided run); targets = held-out MD, error reference = "
        f"{reference}, diversity = all MD replicas",
        fontsize=10,
    )
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one density per material, 2 replicas, 64 steps, no EXAFS-guided row")  # fmt: skip
    parser.add_argument("--materials", nargs="+", default=["a-Si", "a-C"], choices=["a-Si", "a-C"])
    parser.add_argument("--densities", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0, 3.5])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--strength", type=float, default=100.0, help="guidance ξ (invert's default is 30)")
    parser.add_argument("--surrogate-strength", type=float, default=30.0, help="ξ of surrogate-guided rows (EXAFS)")
    parser.add_argument("--schedule", default="two-stage", choices=("two-stage", "guided"), help="see invert()")
    parser.add_argument("--t-guide", type=float, default=0.6, help="guidance on for t ≤ this")
    parser.add_argument("--corrector-steps", type=int, default=4, help="Langevin corrector steps per step")
    parser.add_argument("--restarts", type=int, default=None,
                        help="restart cycles (CN ranges Si 3–4, C 2–4); default a-C 6, a-Si 0")  # fmt: skip
    parser.add_argument("--restart-mode", default=None, choices=("replica", "local"), help="default a-C local")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--silicon-prior", default="a-Si-all", help="bundled prior name or checkpoint")
    parser.add_argument("--carbon-prior", default="a-C", help="bundled prior name or checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--melt-ps", type=float, default=1.0, help="liquid start: ps of MD at 5000 K")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the cases and rows already in the output JSON; rows run now are added to their case",
    )
    parser.add_argument("--report-only", action="store_true", help="print the table and redraw the PNG from the JSON")
    parser.add_argument("--save-structures", type=Path, default=None, help="folder for every row's structures")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.steps = 2, 64
        if args.rows == list(ROWS):  # 64 steps cannot take surrogate guidance (diverges at ξ 10 and 30)
            args.rows = [row for row in ROWS if row != "EXAFS"]
        args.densities = None
    torch.set_num_threads(args.threads)
    out = args.out or Path(__file__).parent / "results" / ("vs_rmc_quick" if args.quick else "vs_rmc")
    json_path, png_path = out.parent / f"{out.name}.json", out.parent / f"{out.name}.png"  # names may hold dots
    if args.report_only:
        results = json.loads(json_path.read_text())
        print_table(results)
        plot(results, png_path)
        return
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict = {"settings": settings, "cases": {}}
    if args.append and json_path.is_file():  # e.g. one density per invocation
        previous = json.loads(json_path.read_text())
        results["cases"] = previous["cases"]
        results["settings_of_earlier_runs"] = previous.get("settings_of_earlier_runs", []) + [previous["settings"]]
    quick_density = {"a-Si": 2.5, "a-C": 2.5}
    for material in args.materials:
        prior = args.silicon_prior if material == "a-Si" else args.carbon_prior
        results["settings"][f"{material}_prior"] = str(resolve_prior(prior))
        results["settings"][f"{material}_restarts"] = restart_settings(material, args)
        for density in [quick_density[material]] if args.densities is None else args.densities:
            block = run_case(material, density, prior, load_prior(prior)[0], args, args.seed)
            if block is not None:
                case = f"{material}_{density:.1f}"
                if case in results["cases"]:  # --append: rows run now join (or replace) the earlier ones
                    earlier = results["cases"][case]["rows"]
                    block["rows"] = {
                        r: block["rows"].get(r, earlier.get(r)) for r in ROWS if r in {**earlier, **block["rows"]}
                    }
                block["verdict"] = verdict(block)
                results["cases"][case] = block
                out.parent.mkdir(parents=True, exist_ok=True)
                write_json(json_path, results)  # after every case, atomically
    print_table(results)
    plot(results, png_path)
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
