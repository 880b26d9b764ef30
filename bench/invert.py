"""Speed of PDF-guided inversion (the inversion issue's targets), measured in one run on this machine.

    python bench/invert.py [--atoms 1000] [--steps 512] [--threads 2] [--full-runs 3] [--rounds 3] [--preset fast]

``--preset fast`` (default here) times plain Euler–Maruyama without restarts, the path timed before presets existed;
``--preset quality`` times what `invert` now does by default.

1. A full default inversion (`specguide.invert`: two-stage, unconditional pass + guided pass of ``--steps``
   each) of ``--atoms`` a-Si atoms against the g(r) of held-out MD a-Si at 2.5 g/cm³, ``--full-runs`` times
   (target ≤ 90 s for 1000 atoms and 512 steps on 2 CPU cores).
2. Seconds per step of the inversion's second stage (``--steps`` steps from t = 0.6 on one unconditional
   structure, as `invert` runs it) without guidance and with each guidance variant: the default (x0, in the
   sampler's precision: float32), its float64 option and the dps form, which back-propagates through the
   network. The variants take turns for ``--rounds`` rounds and the ratio to the unguided stage is taken within
   each round (target ≤ 1.5 for the default guidance). The whole stage is timed, not a window of it: how often
   the guidance's pair list is rebuilt depends on the step size and on t.

The benchmark tunes glibc's malloc (``specguide.allocator.tune_malloc``, opt-in for the package) as the timings
of docs/benchmarks.md were taken; ``--default-malloc`` times with the C library's defaults.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

from specguide import allocator
from specguide.api import compute_spectrum
from specguide.diffusion.guidance import SpectralGuidance
from specguide.diffusion.inversion import DEFAULT_STRENGTH, invert
from specguide.diffusion.sampler import generate
from specguide.graph import perpendicular_widths
from specguide.observables.measured import load_target
from specguide.pretrained import load_md_dataset, load_prior

T_GUIDE = 0.6  # invert's default: the guided stage re-noises to this t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the second stage (median kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-runs", type=int, default=3, help="full inversions (median and range reported)")
    parser.add_argument("--preset", default="fast", choices=("fast", "quality"),
                        help="sampler preset (fast: plain denoising, as timed before presets existed)")  # fmt: skip
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's malloc defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.default_malloc:
        allocator.tune_malloc()
    print(f"malloc tuned: {allocator.tuned} (--default-malloc: the C library's defaults)")

    folder = Path(tempfile.mkdtemp(prefix="bench_invert_"))
    ase.io.write(folder / "reference.extxyz", load_md_dataset("a-Si_2.5", split="test"))
    x, y, _ = compute_spectrum(folder / "reference.extxyz", "gr")
    target_path = folder / "gr.dat"
    np.savetxt(target_path, np.column_stack([x, y]))
    target = f"gr:{target_path}"

    totals = []
    for _ in range(args.full_runs):
        start = time.perf_counter()
        result = invert("a-Si", [target], density_g_cm3=2.5, n_atoms=args.atoms, n_replicas=1, steps=args.steps,
                        seed=0, progress=False, preset=args.preset)  # fmt: skip
        totals.append(time.perf_counter() - start)
        loss = next(iter(result.summary["losses"].values()))["mean"]
        print(f"full inversion: {args.atoms} atoms, {args.steps} + {args.steps} steps (two-stage): {totals[-1]:.1f} s  "
              f"final g(r) loss {loss:.2e}", flush=True)  # fmt: skip
    print(f"full inversion, median of {args.full_runs}: {np.median(totals):.1f} s ({min(totals):.1f}-{max(totals):.1f})"
          f"; target ≤ 90 s for 1000 atoms, 512 steps")  # fmt: skip

    network, _ = load_prior("a-Si")
    common = dict(density_g_cm3=2.5, n_atoms=args.atoms, n_replicas=1, steps=args.steps, progress=False,
                  preset=args.preset)  # fmt: skip
    first_stage = generate(network, seed=0, **common).structures  # what invert's second stage starts from
    half = float(perpendicular_widths(torch.as_tensor(np.asarray(first_stage[0].cell[:]))[None]).min()) / 2
    loaded = load_target(target, half)
    # as invert builds it (normalized step, ξ = DEFAULT_STRENGTH); each variant gets its own pair list
    variants = {
        "unconditional": None,
        # guidance computes in the sampler's precision by default, which generate() runs in float32
        "guided x0 (default)": SpectralGuidance([loaded], DEFAULT_STRENGTH, step="normalized"),
        "guided x0, float64": SpectralGuidance(
            [load_target(target, half)], DEFAULT_STRENGTH, step="normalized", dtype=torch.float64
        ),  # fmt: skip
        "guided dps": SpectralGuidance(
            [load_target(target, half)], DEFAULT_STRENGTH, step="normalized", form="dps", score=network
        ),  # fmt: skip
    }
    # the variants take turns, --rounds times: a slow spell of a shared machine then hits all of them alike
    timings = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, guidance in variants.items():
            begin = time.perf_counter()
            generate(network, seed=1, init=first_stage, t_start=T_GUIDE, guidance=guidance, **common)
            timings[name].append((time.perf_counter() - begin) / args.steps)
    # a ratio is taken within each round (variant / unguided stage of the same round), then the median over rounds:
    # on a shared machine the speed drifts between rounds by more than guidance costs. Wall time is the measure.
    print(f"\nseconds per step of the second stage ({args.steps} steps from t = {T_GUIDE}), {args.atoms} atoms, "
          f"{args.threads} threads, {args.rounds} interleaved rounds (medians); ratio to the unguided stage within "
          "each round: median (range)")  # fmt: skip
    base = np.asarray(timings["unconditional"])
    for name in variants:
        ratios = np.asarray(timings[name]) / base
        print(f"  {name:22s} {np.median(timings[name]):.4f} s  ratio {np.median(ratios):.2f} "
              f"({ratios.min():.2f}-{ratios.max():.2f})")  # fmt: skip
    print("target: ratio ≤ 1.5 for the default guidance")


if __name__ == "__main__":
    main()
