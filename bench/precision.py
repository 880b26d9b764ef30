"""float32 against float64 on one device: how much each spectrum and the guidance pull change, beside the
difference between two held-out MD replicas of the same material (the noise such a change is judged against).

    python bench/precision.py [--device cuda] [--repeats 3] [--out bench/results/precision_<device>.json]

Where specguide computes in float64 today (the `spectrum` command, the final scoring of an inversion, guidance when
asked for float64) a GPU could compute in float32 if that changes no result beyond the noise (issue 32). For the
first two held-out replicas of the bundled a-Si (2.5 g/cm³) and a-SiO2 sets and each kind (gr, pdf, rdf, adf, sq,
fq, xrd, nd), on ``--device``:

- ``float32``: max |y32 − y64| / max |y64| of replica A;
- ``noise``: max |yA − yB| / max |yA| in float64 (two replicas of one ensemble);
- ``gradient``: the same relative difference for the gradient of a g(r) guidance loss of A against B's g(r)
  (what guidance follows);
- ``seconds32`` / ``seconds64``: median wall seconds of the forward pass (synchronised on a GPU).

Prints one row per material and kind and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from specguide.devices import device_record, resolve_device
from specguide.graph import batch_from_atoms
from specguide.observables.registry import build_observable
from specguide.observables.target import Target
from specguide.pretrained import load_md_dataset

KINDS = ("gr", "pdf", "rdf", "adf", "sq", "fq", "xrd", "nd")
DATASETS = {"a-Si": "a-Si_2.5", "a-SiO2": "a-SiO2_2.2"}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def timed(function, device: torch.device, repeats: int) -> tuple[torch.Tensor, float]:
    seconds = []
    for _ in range(repeats + 1):  # the first call is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        value = function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return value, statistics.median(seconds[1:])


def measure(material: str, kind: str, device: torch.device, repeats: int) -> dict:
    replicas = load_md_dataset(DATASETS[material], split="test")[:2]
    a64 = [t.to(device) for t in batch_from_atoms([replicas[0]], dtype=torch.float64)]
    b64 = [t.to(device) for t in batch_from_atoms([replicas[1]], dtype=torch.float64)]
    a32 = [t.to(torch.float32) if t.is_floating_point() else t for t in a64]
    half = float(torch.linalg.det(a64[1][0]).abs() ** (1 / 3)) / 2
    observable = build_observable(kind, r_max=min(8.0, half))
    with torch.no_grad():
        y64, seconds64 = timed(lambda: observable(*a64), device, repeats)
        y32, seconds32 = timed(lambda: observable(*a32), device, repeats)
        noise = relative(observable(*b64), y64)
    row = {"material": material, "kind": kind, "float32": relative(y32, y64), "noise": noise,
           "seconds32": seconds32, "seconds64": seconds64}  # fmt: skip
    if kind == "gr":
        target = Target(observable, observable(*[t.cpu() for t in b64]).detach()[0])
        gradients = []
        for positions, cells, numbers, batch in (a64, a32):
            leaf = positions.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(target.loss(observable(leaf, cells, numbers, batch)).sum(), leaf)
            gradients.append(gradient)
        row["gradient"] = relative(gradients[1], gradients[0])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = [measure(material, kind, device, args.repeats) for material in DATASETS for kind in KINDS]
    print(f"{'material':8} {'kind':4} {'float32':>9} {'noise':>9} {'gradient':>9} {'s32':>8} {'s64':>8}")
    for r in rows:
        gradient = f"{r['gradient']:9.2e}" if "gradient" in r else " " * 9
        print(f"{r['material']:8} {r['kind']:4} {r['float32']:9.2e} {r['noise']:9.2e} {gradient} "
              f"{r['seconds32']:8.4f} {r['seconds64']:8.4f}")  # fmt: skip
    out = args.out or Path(f"bench/results/precision_{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**device_record(device), "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
