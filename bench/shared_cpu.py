"""Slowdown of an inversion beside busy neighbours, before and after the thread choice of specguide.threads.

    python bench/shared_cpu.py [--atoms 512] [--steps 128] [--neighbours 2] [--rounds 2]

Runs the same small inversion (a-Si, g(r) of held-out MD, ``--preset fast``) in a fresh process, alone and beside
``--neighbours`` busy processes (each a single-threaded numpy loop, as another user's job), with torch's default
threads (one per core: the behaviour before) and with ``specguide.threads.use_threads()`` (the cores of the
process's affinity less the load average: the behaviour now). Prints seconds and the slowdown ratio (busy / alone
with the same setting) of each, measured in one run; rounds alternate and the median is kept. Needs an otherwise
idle machine: the "alone" runs must be alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORK = """
import time, tempfile, numpy as np, ase.io, torch
from pathlib import Path
from specguide.api import compute_spectrum
from specguide.pretrained import load_md_dataset
from specguide.diffusion.inversion import invert
mode, atoms, steps = {mode!r}, {atoms}, {steps}
if mode == "after":
    from specguide.threads import use_threads
    threads, why = use_threads()
else:
    threads, why = torch.get_num_threads(), "torch default"
folder = Path(tempfile.mkdtemp())
ase.io.write(folder / "ref.extxyz", load_md_dataset("a-Si_2.5", split="test"))
x, y, _ = compute_spectrum(folder / "ref.extxyz", "gr")
np.savetxt(folder / "gr.dat", np.column_stack([x, y]), header="r g(r)")
start = time.perf_counter()
invert("a-Si", [f"gr:{{folder / 'gr.dat'}}"], density_g_cm3=2.5, n_atoms=atoms, n_replicas=1, steps=steps, seed=0,
       preset="fast", progress=False)
print("RESULT", time.perf_counter() - start, threads, why)
"""

BUSY = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = a @ a / 400.0\n"


def run(mode: str, atoms: int, steps: int) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", WORK.format(mode=mode, atoms=atoms, steps=steps)], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    _, seconds, threads, why = next(line for line in out.splitlines() if line.startswith("RESULT")).split(" ", 3)
    return float(seconds), int(threads), why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=512)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--neighbours", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=75.0, help="seconds the neighbours run before timing")
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    info = {}
    for _ in range(args.rounds):
        for mode in ("before", "after"):
            seconds, threads, why = run(mode, args.atoms, args.steps)
            times.setdefault(f"{mode} alone", []).append(seconds)
            info[f"{mode} alone"] = (threads, why)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        neighbours = [subprocess.Popen([sys.executable, "-c", BUSY], env=env) for _ in range(args.neighbours)]
        try:
            time.sleep(args.settle)  # the load average sees them
            for mode in ("before", "after"):
                seconds, threads, why = run(mode, args.atoms, args.steps)
                times.setdefault(f"{mode} busy", []).append(seconds)
                info[f"{mode} busy"] = (threads, why)
        finally:
            for process in neighbours:
                process.kill()
        time.sleep(args.settle)  # and forgets them
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"{args.atoms} atoms, {args.steps} + {args.steps} steps, {args.neighbours} busy neighbours, {os.cpu_count()} "
          f"cores, medians of {args.rounds} rounds")  # fmt: skip
    for key, value in median.items():
        threads, why = info[key]
        print(f"  {key:12s} {value:7.1f} s  ({threads} threads: {why})")
    for mode in ("before", "after"):
        print(f"slowdown beside busy neighbours, {mode}: {median[f'{mode} busy'] / median[f'{mode} alone']:.2f}x")
    print(json.dumps({"seconds": times, "median": median, "threads": info}))


if __name__ == "__main__":
    main()
