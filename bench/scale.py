"""Large cells on one machine: time per sampler step and peak memory against the number of atoms, measured in one run.

    python bench/scale.py [--atoms 1000 8000 27000 100000] [--observable-atoms 27000 64000 124000]
                          [--steps 4] [--threads 2] [--device cpu] [--dtype float32] [--log bench/results/scale.log]

1. ``generate`` (a-Si prior, 2.33 g/cm³, preset fast, seed 0) and the guided stage of ``invert`` (the same, with
   the g(r) of a held-out a-Si MD replica as target, x0 guidance as ``invert`` builds it, from t = 0.6) at each of
   ``--atoms``: the first steps of a run of ``--schedule-steps`` steps (256, the commands' default, so atoms move
   as far per step as in a real run; 0 = a run of only the timed steps, whose every step moves the atoms so far
   that every neighbour list is rebuilt): 1 warm-up step, then ``--steps`` timed steps (the interval between
   successive calls of the score network; one call per step in the fast preset), and the process's peak resident
   memory.
2. g(r) (:class:`PairDistribution`, package defaults) and S(Q) (:class:`StructureFactor`, defaults) forward +
   backward of uniformly random a-Si positions at each of ``--observable-atoms``, in ``--dtype``: the first call
   (neighbour list built) and the best of 3 repeats (list reused), and the peak resident memory.

Each size runs in its own subprocess, so the peak memory is that size's. Ratios are against the smallest size of
the same run, and the exponent p of t ∝ N^p is fitted by least squares over the sizes given (and between the
largest two). The load average of the machine (shared by other jobs) is printed before and after every size.
Results are appended to ``--log``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T_GUIDE = 0.6  # invert's guided stage starts from this t
DENSITY = 2.33  # g/cm³, a-Si
AMU_PER_A3_PER_G_CM3 = 0.602214076
SI_MASS = 28.0855


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


class EnoughSteps(Exception):
    """Raised by :class:`TimedScore` once it has timed the calls it was asked for: the run stops there."""


class TimedScore:
    """The prior's score network, recording the wall-clock time of each call (one call per step, preset fast);
    the ``stop_after + 1``-th call ends the run with :class:`EnoughSteps`."""

    def __init__(self, network, stop_after: int | None = None):
        self.network, self.calls, self.stop_after = network, [], stop_after

    def __call__(self, *args):  # positional only: the sampler passes replica_ids only to callables that take them
        self.calls.append((time.perf_counter(), time.process_time()))
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise EnoughSteps
        return self.network(*args)

    def __getattr__(self, name):  # config, schedule, prior_meta: as the network has them
        return getattr(self.network, name)


def device_kwargs(function, device: str, config=None) -> dict:
    """``device=`` where the API takes it (a parameter of ``function`` or a field of its ``config`` dataclass),
    else nothing (CPU)."""
    import dataclasses
    import inspect

    try:
        accepted = "device" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        accepted = False
    accepted = accepted or (config is not None and "device" in {f.name for f in dataclasses.fields(config)})
    if accepted:
        return {"device": device}
    if device != "cpu":
        raise SystemExit(f"--device {device}: this version of specguide runs on the CPU only")
    return {}


def gr_target(folder: Path) -> str:
    import ase.io

    from specguide.api import compute_spectrum
    from specguide.pretrained import load_md_dataset

    ase.io.write(folder / "reference.extxyz", load_md_dataset("a-Si_2.5", split="test"))
    x, y, _ = compute_spectrum(folder / "reference.extxyz", "gr")
    np.savetxt(folder / "gr.dat", np.column_stack([x, y]))
    return f"gr:{folder / 'gr.dat'}"


def run_sampler(kind: str, n_atoms: int, steps: int, device: str, schedule_steps: int = 0) -> dict:
    from specguide.diffusion.guidance import SpectralGuidance
    from specguide.diffusion.inversion import DEFAULT_STRENGTH
    from specguide.diffusion.sampler import GenerateConfig, generate
    from specguide.observables.measured import load_target
    from specguide.pretrained import load_prior

    network, _ = load_prior("a-Si")
    # steps + 2 network calls, whose steps + 1 intervals are the warm-up step and the timed steps
    score = TimedScore(network, stop_after=steps + 1 if schedule_steps > steps + 2 else None)
    common = dict(density_g_cm3=DENSITY, n_atoms=n_atoms, n_replicas=1, steps=max(steps + 2, schedule_steps), seed=0,
                  progress=False, preset="fast", **device_kwargs(generate, device, GenerateConfig))  # fmt: skip
    if kind == "invert":
        with tempfile.TemporaryDirectory() as folder:
            side = (n_atoms * SI_MASS / (DENSITY * AMU_PER_A3_PER_G_CM3)) ** (1 / 3)
            target = load_target(gr_target(Path(folder)), side / 2)
        guidance = SpectralGuidance([target], DEFAULT_STRENGTH, step="normalized")
        common.update(guidance=guidance, t_start=T_GUIDE)
    begin = time.perf_counter()
    try:
        generate(score, **common)
    except EnoughSteps:
        pass
    total = time.perf_counter() - begin
    intervals = np.diff(np.asarray(score.calls), axis=0)  # [steps, (wall, CPU)]; the first is the warm-up step
    per_step = np.median(intervals[1:], axis=0) if len(intervals) > 1 else [math.nan, math.nan]
    return {"seconds_per_step": float(per_step[0]), "cpu_per_step": float(per_step[1]),
            "warm_up_step": float(intervals[0, 0]), "total": total, "timed_steps": int(len(intervals) - 1)}  # fmt: skip


def run_observable(kind: str, n_atoms: int, dtype_name: str, device: str) -> dict:
    import torch

    from specguide.observables import PairDistribution, StructureFactor

    dtype = getattr(torch, dtype_name)
    side = (n_atoms * SI_MASS / (DENSITY * AMU_PER_A3_PER_G_CM3)) ** (1 / 3)
    generator = torch.Generator().manual_seed(0)
    positions = (torch.rand(n_atoms, 3, generator=generator, dtype=torch.float64) * side).to(dtype).to(device)
    cells = (torch.eye(3, dtype=dtype)[None] * side).to(device)
    numbers = torch.full((n_atoms,), 14, dtype=torch.long, device=device)
    observable = PairDistribution() if kind == "gr" else StructureFactor()

    def once() -> tuple[float, float]:
        x = positions.clone().requires_grad_(True)
        start, cpu = time.perf_counter(), time.process_time()
        observable(x, cells, numbers).sum().backward()
        if device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu

    first = once()
    repeats = min(once() for _ in range(3))
    return {"first_call": first[0], "first_call_cpu": first[1], "repeat": repeats[0], "repeat_cpu": repeats[1],
            "cutoff": getattr(observable, "cutoff", observable.r_max)}  # fmt: skip


def child(kind: str, n_atoms: int, args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if kind in ("generate", "invert"):
        result = run_sampler(kind, n_atoms, args.steps, args.device, args.schedule_steps)
    else:
        result = run_observable(kind, n_atoms, args.dtype, args.device)
    result["peak_rss_gib"] = peak_rss_gib()
    print("RESULT " + json.dumps(result), flush=True)


def measure(kind: str, n_atoms: int, args) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(n_atoms), "--steps", str(args.steps),
               "--schedule-steps", str(args.schedule_steps), "--threads", str(args.threads), "--device", args.device,
               "--dtype", args.dtype]  # fmt: skip
    load_before = os.getloadavg()[0]
    process = subprocess.run(command, capture_output=True, text=True)
    result = {"kind": kind, "atoms": n_atoms, "load_before": load_before, "load_after": os.getloadavg()[0]}
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        tail = (process.stderr or process.stdout).strip().splitlines()[-1:] or ["no output"]
        result["error"] = f"exit {process.returncode}: {tail[0]}"
    else:
        result.update(json.loads(lines[-1][len("RESULT ") :]))
    return result


def exponent(sizes, times) -> tuple[float, float, float]:
    """p of t ∝ N^p: fitted over all sizes, fitted without the smallest (whose fixed costs flatten the fit), and
    between the two largest."""
    sizes, times = np.asarray(sizes, float), np.asarray(times, float)
    if len(sizes) < 2:
        return math.nan, math.nan, math.nan
    fit = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
    rest = float(np.polyfit(np.log(sizes[1:]), np.log(times[1:]), 1)[0]) if len(sizes) > 2 else fit
    top = float(np.log(times[-1] / times[-2]) / np.log(sizes[-1] / sizes[-2]))
    return fit, rest, top


def report(kind: str, rows: list[dict], key: str, cpu_key: str, out) -> None:
    good = [r for r in rows if "error" not in r and math.isfinite(r.get(key, math.nan))]
    for r in rows:
        if "error" in r:
            out(f"  {kind:<8s} N={r['atoms']:>8,d}  FAILED {r['error']}  (load {r['load_before']:.2f})")
    if not good:
        return
    base = good[0]
    for r in good:
        extra = f" (CPU {r[cpu_key]:7.3f} s ×{r[cpu_key] / base[cpu_key]:6.2f})"
        if "first_call" in r:
            extra += f"  first call {r['first_call']:7.3f} s (CPU {r['first_call_cpu']:7.3f} s)"
        out(f"  {kind:<8s} N={r['atoms']:>8,d}  {key} {r[key]:8.3f} s  ×{r[key] / base[key]:7.2f}{extra}  "
            f"peak RSS {r['peak_rss_gib']:6.2f} GiB  ×{r['peak_rss_gib'] / base['peak_rss_gib']:5.2f}  "
            f"load {r['load_before']:.2f}→{r['load_after']:.2f}")  # fmt: skip
    sizes = [r["atoms"] for r in good]
    for label, field in (("wall", key), ("CPU", cpu_key), ("first call wall", "first_call"),
                         ("first call CPU", "first_call_cpu")):  # fmt: skip
        if field in good[0]:
            fit, rest, top = exponent(sizes, [r[field] for r in good])
            out(f"  {kind:<8s} exponent p of {label} time (t ∝ N^p): {fit:.2f} fitted over {len(good)} sizes, "
                f"{rest:.2f} from {sizes[1] if len(sizes) > 1 else sizes[0]:,} atoms up, "
                f"{top:.2f} between the two largest")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="*", default=[1000, 8000, 27000, 100000])
    parser.add_argument("--observable-atoms", type=int, nargs="*", default=[27000, 64000, 100000, 124000])
    parser.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up step")
    parser.add_argument("--schedule-steps", type=int, default=256,
                        help="steps of the run whose first steps are timed (0: only the timed steps)")  # fmt: skip
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (on a shared machine two threads wait on each other: docs/benchmarks.md)",
    )
    parser.add_argument("--device", default="cpu", help="passed to the API where it takes a device")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="of the observables")
    parser.add_argument("--only", nargs="*", default=["generate", "invert", "gr", "sq"])
    parser.add_argument("--log", default=str(Path(__file__).parent / "results" / "scale.log"))
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args)
        return

    lines: list[str] = []

    def out(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    out(f"# bench/scale.py {time.strftime('%Y-%m-%d %H:%M:%S')}  {os.cpu_count()} CPUs, threads {args.threads}, "
        f"device {args.device}, observables in {args.dtype}, sampler schedule {args.schedule_steps or args.steps + 2} "
        f"steps, malloc tuning "
        f"{os.environ.get('SPECGUIDE_MALLOC_TUNING', 'off')}, load average {os.getloadavg()}")  # fmt: skip
    plan = [(k, n) for k in ("generate", "invert") if k in args.only for n in sorted(args.atoms)]
    plan += [(k, n) for k in ("gr", "sq") if k in args.only for n in sorted(args.observable_atoms)]
    results: dict[str, list[dict]] = {}
    for kind, n in plan:
        row = measure(kind, n, args)
        results.setdefault(kind, []).append(row)
        print(f"    {json.dumps(row)}", flush=True)
    for kind, rows in results.items():
        sampler = kind in ("generate", "invert")
        keys = ("seconds_per_step", "cpu_per_step") if sampler else ("repeat", "repeat_cpu")
        report(kind, rows, *keys, out)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as handle:
        handle.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
