"""The glibc malloc tuning applied at import: freed tensors' memory is reused, not faulted in again each call."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only"
)

# a guidance-sized workload (200k pair distances -> g(r) and its gradient), repeated; prints the median number
# of page faults per call (the heap still grows now and then while it settles: single calls vary)
WORKLOAD = """
import resource, statistics, torch, specguide.allocator as allocator
from specguide.observables.pdf import gaussian_histogram
x = (torch.rand(200_000, dtype=torch.float64) * 8).requires_grad_(True)
group = torch.zeros(200_000, dtype=torch.long)
def call():
    out = gaussian_histogram(x, group, 1, 0.01, 0.02, 400, 0.15)
    torch.autograd.grad((out**2).sum(), x)
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    call()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(allocator.tuned, statistics.median(faults[2:]))
"""


def _faults_per_call(setting: str) -> tuple[str, float]:
    env = os.environ | {"SPECGUIDE_TUNE_MALLOC": setting, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned, float(faults)


def test_import_tuning_stops_refaulting_freed_memory_and_can_be_switched_off():
    tuned, faults = _faults_per_call("1")
    default_tuned, default_faults = _faults_per_call("0")
    assert (tuned, default_tuned) == ("True", "False")
    # glibc's defaults hand freed memory back and fault it in again on most calls (6,000-12,000 4-KiB pages here)
    assert default_faults > 1000
    assert faults < 0.05 * default_faults
