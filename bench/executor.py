"""FEFF sites through the Dask executor: four sites on 2 workers against the same four on 1 worker.

    python bench/executor.py [--sites 4] [--log bench/results/executor.log]

Case: Si K-edge EXAFS (the default FeffSettings, cluster radius 6 Å) of the first ``--sites`` Si atoms of the first
held-out a-Si_2.5 structure (216 atoms), the a-Si case of bench/feff_cost.py. Each run gets a Dask ``LocalCluster``
of single-threaded worker processes (``processes=True, threads_per_worker=1``), started and warmed (specguide and
feff10 imported on every worker) before the clock starts, and no FEFF cache, so every site runs. The ratio
``time(2 workers) / time(1 worker)`` is printed and appended to the log with the load average before and after each
run (the machine is shared: wall time depends on how busy it is). Bar: ratio ≤ 0.6. The spectra of the two runs
must be equal (the bench stops otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from specguide.executors import ExecutorConfig
from specguide.pretrained import load_md_dataset
from specguide.simulate import feff

BAR = 0.6


def _warm() -> str:
    import feff10

    import specguide.simulate.feff  # noqa: F401

    return feff10.__version__


def timed_run(n_workers: int, structure, sites: list[int]) -> dict:
    """Start a LocalCluster of ``n_workers``, warm it, then time :func:`feff.site_spectra` through it."""
    import distributed

    t0 = time.perf_counter()
    settings = dict(n_workers=n_workers, processes=True, threads_per_worker=1, dashboard_address=":0")
    with distributed.LocalCluster(**settings) as cluster, distributed.Client(cluster) as client:
        client.run(_warm)
        started = time.perf_counter() - t0
        executor = ExecutorConfig(kind="dask", address=cluster.scheduler_address)
        load_before = os.getloadavg()
        timings: list[dict] = []
        t1 = time.perf_counter()
        (spectra,) = feff.site_spectra([structure], [sites], absorber="Si", kind="exafs", progress=False,
                                       executor=executor, timings=timings)  # fmt: skip
        wall = time.perf_counter() - t1
        load_after = os.getloadavg()
    return dict(workers=n_workers, wall_s=round(wall, 2), cluster_start_s=round(started, 2),
                site_wall_s=[round(t["seconds"], 2) for t in timings],
                site_cpu_s=[round(t["cpu_seconds"], 2) for t in timings],
                load_before=[round(v, 2) for v in load_before], load_after=[round(v, 2) for v in load_after],
                spectra=spectra)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--log", type=Path, default=Path(__file__).parent / "results" / "executor.log")
    args = parser.parse_args()
    structure = load_md_dataset("a-Si_2.5", split="test")[0]
    sites = list(range(args.sites))
    one = timed_run(1, structure, sites)
    two = timed_run(2, structure, sites)
    if not np.array_equal(one.pop("spectra"), two.pop("spectra")):
        raise SystemExit("the spectra of the 1-worker and 2-worker runs differ")
    ratio = two["wall_s"] / one["wall_s"]
    record = dict(
        bench="FEFF sites through the Dask executor (bench/executor.py)",
        when=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        case=f"a-Si_2.5 test structure 0, Si K-edge EXAFS, default FeffSettings, sites {sites}",
        machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
        one_worker=one,
        two_workers=two,
        ratio_2_to_1=round(ratio, 3),
        bar=f"<= {BAR}",
        met=bool(ratio <= BAR),
    )
    line = json.dumps(record)
    print(line)
    print(f"{args.sites} FEFF sites: 1 worker {one['wall_s']:.1f} s, 2 workers {two['wall_s']:.1f} s, "
          f"ratio {ratio:.2f} (bar <= {BAR}: {'met' if ratio <= BAR else 'NOT met'}); load average "
          f"{one['load_before'][0]:.1f} -> {two['load_after'][0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    with open(args.log, "a") as log:
        log.write(line + "\n")


if __name__ == "__main__":
    main()
