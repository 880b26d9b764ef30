"""Speed of PDF-guided inversion (the inversion issue's targets), measured in one run on this machine.

    python bench/invert.py [--atoms 1000] [--steps 512] [--threads 2] [--full-runs 3]

1. A full default inversion (`specguide.invert`: two-stage, unconditional pass + guided pass of ``--steps``
   each) of ``--atoms`` a-Si atoms against the g(r) of held-out MD a-Si at 2.5 g/cm³, ``--full-runs`` times
   (target ≤ 90 s for 1000 atoms and 512 steps on 2 CPU cores). Its two passes have the same number of steps,
   so the guided pass's seconds over the unconditional pass's are the per-step ratio of that inversion
   (target ≤ 1.5 for the default x0 guidance), with the guided pass's real step size and neighbour-list
   rebuilds.
2. The same ratio in short windows the variants take in turn (``--repeats`` rounds of ``--timing-steps``
   steps from t = 0.3 at the step size of the inversion's guided pass, on its final structures): the default
   guidance, its float32 option, and the dps form, which back-propagates through the network.

``import specguide`` tunes glibc's malloc (``specguide.allocator``); run with ``SPECGUIDE_TUNE_MALLOC=0`` to time
with the C library's defaults.
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
from specguide.data.md import load_md_dataset
from specguide.diffusion.guidance import SpectralGuidance
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampling import sample
from specguide.diffusion.targets import load_target
from specguide.diffusion.training import load_prior
from specguide.graph import batch_from_atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--timing-steps", type=int, default=40, help="steps per variant in the per-step comparison")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved timing rounds (median kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-runs", type=int, default=3, help="full inversions (median and range reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"malloc tuned at import: {allocator.tuned} (SPECGUIDE_TUNE_MALLOC=0: the C library's defaults)")

    folder = Path(tempfile.mkdtemp(prefix="bench_invert_"))
    ase.io.write(folder / "reference.extxyz", load_md_dataset("a-Si_2.5", split="test"))
    x, y, _ = compute_spectrum(folder / "reference.extxyz", "gr")
    target_path = folder / "gr.dat"
    np.savetxt(target_path, np.column_stack([x, y]))
    target = f"gr:{target_path}"

    totals, pass_ratios = [], []
    for _ in range(args.full_runs):
        start = time.perf_counter()
        result = invert("a-Si", [target], density_g_cm3=2.5, n_atoms=args.atoms, n_replicas=1, steps=args.steps,
                        seed=0, progress=False)  # fmt: skip
        totals.append(time.perf_counter() - start)
        passes = result.config["reports"]
        pass_ratios.append(passes["guided"]["seconds"] / passes["unconditional"]["seconds"])
        loss = next(iter(result.summary["losses"].values()))["mean"]
        print(f"full inversion: {args.atoms} atoms, {args.steps} + {args.steps} steps (two-stage): {totals[-1]:.1f} s "
              f"(unconditional pass {passes['unconditional']['seconds']:.1f} s, guided pass "
              f"{passes['guided']['seconds']:.1f} s: per-step ratio {pass_ratios[-1]:.2f})  final g(r) loss {loss:.2e}",
              flush=True)  # fmt: skip
    print(f"full inversion over {args.full_runs} runs: {np.median(totals):.1f} s (target ≤ 90 s for 1000 atoms, 512 "
          f"steps); per-step ratio guided/unconditional {np.median(pass_ratios):.2f} "
          f"({min(pass_ratios):.2f}-{max(pass_ratios):.2f}; target ≤ 1.5)")  # fmt: skip

    network, _ = load_prior("a-Si")
    positions, cells, numbers, batch = batch_from_atoms(result.structures)
    half = float(cells[0].diagonal().min()) / 2
    loaded = load_target(target, half)
    variants = {
        "unconditional": None,
        "guided x0 (default)": SpectralGuidance([loaded], 30.0),
        "guided x0, float32": SpectralGuidance([loaded], 30.0, dtype=torch.float32),
        "guided dps": SpectralGuidance([loaded], 30.0, form="dps", score=network),
    }
    # the guided pass's step size (t_guide = 0.6 down to ~0 in --steps steps), from t = 0.3
    t_min = 0.3 - args.timing_steps * 0.6 / args.steps
    # the variants take turns, --repeats times: a slow spell of a shared machine then hits all of them alike
    timings = {name: [] for name in variants}
    cpu_timings = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, guidance in variants.items():
            with torch.no_grad():
                sample(network, cells, numbers, batch, positions=positions, steps=3, t_start=0.3, guidance=guidance)
                begin, begin_cpu = time.perf_counter(), time.process_time()
                sample(network, cells, numbers, batch, positions=positions, steps=args.timing_steps, t_start=0.3,
                       t_min=t_min, guidance=guidance, generator=1)  # fmt: skip
            timings[name].append((time.perf_counter() - begin) / args.timing_steps)
            cpu_timings[name].append((time.process_time() - begin_cpu) / args.timing_steps)
    # a ratio is taken within each round (variant / unconditional of the same round), then the median over
    # rounds: on a shared machine the speed drifts between rounds by more than guidance costs. Wall time is the
    # measure (with 2 threads the CPU time counts both).
    print(f"\nseconds per step, {args.atoms} atoms, {args.threads} threads, {args.repeats} interleaved rounds of "
          f"{args.timing_steps} steps from t = 0.3 to {t_min:.3f} (medians); ratio to unconditional within each round: "
          "median (range)")  # fmt: skip
    base = np.asarray(timings["unconditional"])
    for name in variants:
        ratios = np.asarray(timings[name]) / base
        print(f"  {name:22s} wall {np.median(timings[name]):.4f} s  CPU {np.median(cpu_timings[name]):.4f} s  "
              f"ratio {np.median(ratios):.2f} ({ratios.min():.2f}-{ratios.max():.2f})")  # fmt: skip
    print("target: ratio ≤ 1.5 for the default guidance")


if __name__ == "__main__":
    main()
