"""Seconds per denoising step and peak memory of the prior sampler vs N, the scaling exponent, and one
end-to-end 1000-atom, 512-step generation against the 60 s target.

    python bench/sampling.py [--sizes 216 1000 10000 100000] [--networks default paper] [--steps-timed 5]
                             [--threads 2] [--quick] [--no-generate]

Networks: ``default`` is the network of the bundled a-Si prior (``load_prior("a-Si")``: cutoff 4.2 Å, width 64,
4 layers, trained weights); if that file is missing, ``ScoreNetworkConfig(species=(14,), cutoff=4.2)`` with
random weights. ``paper`` is ``ScoreNetworkConfig.paper((14,))`` (width 200, 5 layers, cutoff 5 Å) with its
initial weights: the cost of a step does not depend on the weights (its zero-initialised decoder makes the drift
zero, so its steps are pure noise + veto + wrap).

Structures: N Si atoms at 2.33 g/cm³ in a cubic cell, uniformly random positions with pairs closer than the veto
distance redrawn (``random_positions``), noised to ``t_start = 0.2`` (sigma = 0.16 Å) and integrated with
:func:`specguide.diffusion.sampler.sample` at the step size of a 512-step run (dt = 0.998/512): the late-sampling
regime, where the neighbour count per atom is set by the density (~16 within 4.2 Å, ~26 within 5 Å) and the
minimum-distance veto (0.7 x covalent radii, 1.55 Å, as ``generate(d_min="auto")``) is on. A step is the full
sampler step (score network, Euler–Maruyama update, failure check, veto, wrap), timed from one score call to the
next; the first step is a warm-up and the median of the following ``--steps-timed`` is reported.

Each configuration runs in a fresh subprocess (``python bench/sampling.py --one ...``) that reports its own peak
RSS (``ru_maxrss``, model + structures + sampler, after imports). Configurations whose step time or memory,
extrapolated linearly from the next smaller size, exceed ``--max-step-seconds`` / ``--max-rss-gib`` are skipped
("—"). The exponent p of t ∝ N^p is fitted over N >= 1000: at 216 atoms fixed per-step overheads (Python, the
per-call neighbour-list set-up, small matmuls) dominate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

SI = 14
DENSITY = 2.33  # g/cm³, a-Si
T_START = 0.2
REFERENCE_STEPS = 512  # the step size of a 512-step run over (T_MIN, T_MAX)
TARGET_SECONDS = 60.0
RESULT_TAG = "RESULT "


# --------------------------------------------------------------------------------------------------
# child: one configuration in a fresh process
# --------------------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def build_network(name: str):
    """``(network in eval mode, description)`` for ``default`` or ``paper``."""
    from specguide.models.score import ScoreNetwork, ScoreNetworkConfig

    if name == "default":
        try:
            from specguide.pretrained import load_prior

            network, _ = load_prior("a-Si")
            return network, "bundled a-Si prior"
        except (FileNotFoundError, ValueError) as exc:
            print(f"(no usable bundled a-Si prior: {exc}; random weights)", file=sys.stderr)
            return ScoreNetwork(ScoreNetworkConfig(species=(SI,), cutoff=4.2)).eval(), "random weights"
    if name == "paper":
        return ScoreNetwork(ScoreNetworkConfig.paper((SI,))).eval(), "random weights"
    raise ValueError(f"unknown network {name!r}")


def run_one(network_name: str, n_atoms: int, steps_timed: int, seed: int = 0) -> dict:
    import torch
    from ase.data import atomic_masses

    from specguide.chemistry import VETO_FACTOR, PairTable
    from specguide.diffusion.sampler import random_positions, sample
    from specguide.graph import neighbor_graph
    from specguide.models.schedule import T_MAX, T_MIN
    from specguide.structure import cubic_cell_side

    rss_imports = _peak_rss_mib()
    network, source = build_network(network_name)
    config = network.config
    side = cubic_cell_side(n_atoms, float(atomic_masses[SI]), DENSITY)
    cells = torch.eye(3, dtype=torch.float32)[None] * side
    numbers = torch.full((n_atoms,), SI, dtype=torch.long)
    batch = torch.zeros(n_atoms, dtype=torch.long)
    veto = PairTable.covalent([SI], VETO_FACTOR)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        seeds = random_positions(cells, numbers, batch, generator, PairTable(veto))
        edges = neighbor_graph(seeds, cells, batch, config.cutoff).edge_index.shape[1]

    stamps: list[float] = []
    network_seconds: list[float] = []

    def timed_score(positions, cells_, numbers_, batch_, t):
        stamps.append(time.perf_counter())
        out = network(positions, cells_, numbers_, batch_, t)
        network_seconds.append(time.perf_counter() - stamps[-1])
        return out

    steps = 1 + steps_timed
    dt = (T_MAX - T_MIN) / REFERENCE_STEPS
    with torch.no_grad():
        result = sample(
            timed_score, cells, numbers, batch,
            positions=seeds, schedule=network.schedule, steps=steps, t_start=T_START, t_min=T_START - steps * dt,
            generator=generator, d_min=veto, progress=False,
        )  # fmt: skip
        end = time.perf_counter()
    bounds = [*stamps, end]
    step_seconds = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    if len(step_seconds) != steps or sum(result.report.n_reinitialised):
        raise RuntimeError(f"unexpected sampler run: {len(step_seconds)} steps, report {result.report.to_dict()}")
    timed = step_seconds[1:]  # step 0 is the warm-up
    return {
        "network": network_name,
        "source": source,
        "n_atoms": n_atoms,
        "parameters": sum(p.numel() for p in network.parameters()),
        "cutoff": config.cutoff,
        "hidden": config.hidden,
        "n_layers": config.n_layers,
        "neighbours": edges / n_atoms,
        "warmup_s": step_seconds[0],
        "step_s": float(np.median(timed)),
        "step_min_s": min(timed),
        "step_max_s": max(timed),
        "network_fraction": float(np.median(network_seconds[1:]) / np.median(timed)),
        "vetoed_per_step": result.report.vetoed_moves / steps,
        "rss_imports_mib": rss_imports,
        "peak_rss_mib": _peak_rss_mib(),
    }


def run_generate(n_atoms: int, steps: int) -> dict:
    import torch

    from specguide.diffusion.sampler import generate
    from specguide.pretrained import resolve_prior

    try:
        resolve_prior("a-Si")
        prior, source = "a-Si", "bundled a-Si prior"
    except FileNotFoundError:
        prior, source = build_network("default")
    start = time.perf_counter()
    with torch.no_grad():
        run = generate(prior, density_g_cm3=DENSITY, n_atoms=n_atoms, steps=steps, seed=0, progress=False,
                       preset="fast")  # fmt: skip
    structures, details = run.structures, {"report": run.report}
    seconds = time.perf_counter() - start
    positions = structures[0].get_positions()
    return {
        "source": source,
        "n_atoms": n_atoms,
        "steps": steps,
        "seconds": seconds,
        "finite": bool(np.isfinite(positions).all()),
        "vetoed_moves": details["report"]["vetoed_moves"],
        "n_reinitialised": sum(details["report"]["n_reinitialised"]),
        "peak_rss_mib": _peak_rss_mib(),
    }


# --------------------------------------------------------------------------------------------------
# parent: schedule the subprocesses, print the table
# --------------------------------------------------------------------------------------------------


def child(arguments: list[str], threads: int, timeout: float) -> tuple[dict | None, str]:
    """Run ``bench/sampling.py <arguments>`` in a fresh interpreter; ``(result, error text)``."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, os.path.abspath(__file__), *arguments, "--threads", str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :]), ""
    tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    if done.returncode < 0:
        tail = f"killed by signal {-done.returncode} (out of memory?) {tail}"
    return None, tail


def mem_available_gib() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return math.inf


def fit_exponent(rows: list[dict], minimum_n: int) -> float:
    points = [(r["n_atoms"], r["step_s"]) for r in rows if r["n_atoms"] >= minimum_n]
    if len(points) < 2:
        return math.nan
    n, t = np.array(points, dtype=float).T
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[216, 1000, 10000, 100000])
    parser.add_argument("--networks", nargs="+", choices=["default", "paper"], default=["default", "paper"])
    parser.add_argument("--steps-timed", type=int, default=5, help="timed steps after the warm-up step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="only N = 216 and 1000")
    parser.add_argument("--max-step-seconds", type=float, default=60.0, help="skip sizes whose step would be longer")
    parser.add_argument("--max-config-seconds", type=float, default=300.0, help="fewer timed steps beyond this")
    parser.add_argument("--max-rss-gib", type=float, default=20.0, help="skip sizes whose peak RSS would be larger")
    parser.add_argument("--no-generate", action="store_true", help="skip the end-to-end generate() run")
    parser.add_argument("--generate-atoms", type=int, default=1000)
    parser.add_argument("--generate-steps", type=int, default=512)
    parser.add_argument("--one", nargs=2, metavar=("NETWORK", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--one-generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one or args.one_generate:
        import torch

        torch.set_num_threads(args.threads)
        if args.one:
            result = run_one(args.one[0], int(args.one[1]), args.steps_timed)
        else:
            result = run_generate(args.generate_atoms, args.generate_steps)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return

    import torch

    sizes = sorted({n for n in args.sizes if not args.quick or n in (216, 1000)})
    if args.quick and not sizes:
        sizes = [216, 1000]
    print(
        f"specguide sampler benchmark — {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s)"
    )
    print("load average (1/5/15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        f"a-Si {DENSITY} g/cm³, cubic cell, random positions (veto-redrawn) noised to t={T_START}, "
        f"dt of a {REFERENCE_STEPS}-step run, veto on; median of {args.steps_timed} steps after 1 warm-up step; "
        "each configuration in a fresh process\n"
    )
    header = (
        f"{'network':<8} {'N':>7} {'nbrs/atom':>9} {'s/step':>9} {'(min–max)':>17} {'µs/atom·step':>12} "
        f"{'net %':>5} {'veto/step':>9} {'peak RSS MiB':>12}  {'512 steps s':>11}"
    )
    rows_by_network: dict[str, list[dict]] = {}
    descriptions: dict[str, str] = {}
    for network in args.networks:
        print(header if network == args.networks[0] else "")
        rows: list[dict] = []
        previous: dict | None = None
        for n in sizes:
            reason = ""
            steps_timed = args.steps_timed
            if previous is not None:
                ratio = n / previous["n_atoms"]
                estimate = previous["step_s"] * ratio
                base = previous["rss_imports_mib"]
                rss_estimate = (base + (previous["peak_rss_mib"] - base) * ratio) / 1024
                limit = min(args.max_rss_gib, 0.9 * mem_available_gib())
                if estimate > args.max_step_seconds:
                    reason = f"skipped: ~{estimate:.0f} s/step estimated > {args.max_step_seconds:.0f} s"
                elif rss_estimate > limit:
                    reason = f"skipped: ~{rss_estimate:.1f} GiB estimated > {limit:.1f} GiB"
                else:
                    steps_timed = max(2, min(args.steps_timed, int(args.max_config_seconds / max(estimate, 1e-9)) - 1))
            result = None
            if not reason:
                timeout = max(600.0, 20 * (previous["step_s"] * n / previous["n_atoms"] if previous else 10.0))
                arguments = ["--one", network, str(n), "--steps-timed", str(steps_timed)]
                result, reason = child(arguments, args.threads, timeout)
            if result is None:
                print(f"{network:<8} {n:>7} {'—':>9} {'—':>9} {'':>17} {'—':>12} {'—':>5} {'—':>9} {'—':>12}  {'—':>11}"
                      f"   {reason}")  # fmt: skip
                continue
            descriptions[network] = (
                f"{network}: width {result['hidden']}, {result['n_layers']} layers, cutoff {result['cutoff']} Å, "
                f"{result['parameters']:,} parameters ({result['source']})"
            )
            spread = f"({result['step_min_s']:.4f}–{result['step_max_s']:.4f})"
            print(
                f"{network:<8} {n:>7} {result['neighbours']:>9.1f} {result['step_s']:>9.4f} {spread:>17} "
                f"{1e6 * result['step_s'] / n:>12.1f} {100 * result['network_fraction']:>5.0f} "
                f"{result['vetoed_per_step']:>9.1f} {result['peak_rss_mib']:>12.0f}  "
                f"{REFERENCE_STEPS * result['step_s']:>11.1f}",
                flush=True,
            )
            rows.append(result)
            previous = result
        rows_by_network[network] = rows

    print()
    for network in args.networks:
        if network in descriptions:
            print(descriptions[network])
    print("net % = share of the step spent in the score network (rest: EM update, failure check, veto, wrap)")
    print("peak RSS = the child process's ru_maxrss (after imports alone: ~{:.0f} MiB)".format(
        min((r["rss_imports_mib"] for rows in rows_by_network.values() for r in rows), default=math.nan)
    ))  # fmt: skip
    print(
        "\nscaling exponent p (t/step ∝ N^p, least squares over N >= 1000; N = 216 is overhead-dominated)"
        "\nand pairwise slopes between consecutive sizes:"
    )
    for network, rows in rows_by_network.items():
        used = [r["n_atoms"] for r in rows if r["n_atoms"] >= 1000]
        p = fit_exponent(rows, 1000)
        text = f"p = {p:.2f}" if math.isfinite(p) else "p = — (fewer than two sizes >= 1000)"
        local = []
        for a, b in zip(rows[:-1], rows[1:]):
            slope = math.log(b["step_s"] / a["step_s"]) / math.log(b["n_atoms"] / a["n_atoms"])
            local.append(f"{a['n_atoms']}→{b['n_atoms']}: {slope:.2f}")
        print(f"  {network:<8} {text}   (N = {', '.join(map(str, used)) or '—'}; pairwise {', '.join(local) or '—'})")

    if not args.no_generate:
        print(
            f"\nend to end: generate(a-Si, density {DENSITY}, n_atoms={args.generate_atoms}, "
            f"steps={args.generate_steps}, seed=0, d_min='auto') in a fresh process ..."
        )
        result, reason = child(
            ["--one-generate", "--generate-atoms", str(args.generate_atoms), "--generate-steps",
             str(args.generate_steps)],
            args.threads, 3600.0,
        )  # fmt: skip
        if result is None:
            print(f"  failed: {reason}")
        else:
            verdict = "meets" if result["seconds"] <= TARGET_SECONDS else "MISSES"
            print(
                f"  {result['seconds']:.1f} s wall ({result['source']}; target <= {TARGET_SECONDS:.0f} s: {verdict}), "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB, vetoed moves {result['vetoed_moves']}, "
                f"re-initialised {result['n_reinitialised']}, finite {result['finite']}"
            )
    load = os.getloadavg()
    print("\nload average (1/5/15 min) at end: {:.2f} {:.2f} {:.2f}".format(*load))
    if max(load[:2]) > args.threads + 1.0:
        print(
            f"WARNING: load average above {args.threads} (this benchmark's own threads) + 1: other processes shared "
            "the CPUs during the run, so the timings above are inflated; rerun on an idle machine"
        )


if __name__ == "__main__":
    main()
