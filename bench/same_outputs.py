"""Do two commits give the same outputs? The same seeded commands (spectra, generate, invert) on both source trees,
compared number by number.

    python bench/same_outputs.py 5514831            # that commit against the working tree
    python bench/same_outputs.py 5514831 HEAD~3

Each tree is checked out with `git worktree` into a temporary folder and run with its own `src/` first on
PYTHONPATH, one thread; the maximum absolute difference of every spectrum and of every atom position is printed
with the coordination fractions of both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ase.io
import numpy as np

REPO = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["example", "a-Si"],
    ["--threads", "1", "spectrum", "a-Si.extxyz", "--kind", "gr", "--out", "gr.dat"],
    ["--threads", "1", "spectrum", "a-Si.extxyz", "--kind", "xrd", "--out", "xrd.dat"],
    ["--threads", "1", "generate", "--prior", "a-Si", "--density", "2.5", "--atoms", "216", "--replicas", "2",
     "--steps", "64", "--seed", "3", "--out", "gen"],
    ["--threads", "1", "invert", "--prior", "a-Si", "--target", "gr:gr.dat", "--density", "2.5", "--atoms", "216",
     "--replicas", "2", "--steps", "64", "--preset", "fast", "--seed", "5", "--out", "inv"],
]  # fmt: skip


def run_tree(source: Path, out: Path) -> None:
    out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(source / "src"), OMP_NUM_THREADS="1")
    for command in COMMANDS:
        subprocess.run([sys.executable, "-c", "from specguide.cli import app; app()", *command], cwd=out, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def compare(a: Path, b: Path) -> list[str]:
    lines = []
    for name in ("gr.dat", "xrd.dat"):
        x, y = np.loadtxt(a / name), np.loadtxt(b / name)
        lines.append(
            f"{name}: max |difference| {np.abs(x - y).max():.3g}" if x.shape == y.shape else f"{name}: shapes differ"
        )
    for name in ("gen", "inv"):
        first, second = (
            ase.io.read(a / name / "structures.extxyz", ":"),
            ase.io.read(b / name / "structures.extxyz", ":"),
        )
        worst = max(np.abs(p.positions - q.positions).max() for p, q in zip(first, second))
        cn = [json.loads((d / name / "summary.json").read_text())["coordination"] for d in (a, b)]
        lines.append(f"{name}: {len(first)} vs {len(second)} structures, max |Δposition| {worst:.3g} Å, "
                     f"coordination equal: {cn[0] == cn[1]} ({cn[1]})")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default=None, help="a commit (default: the working tree)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = []
        for label, rev in (("before", args.before), ("after", args.after)):
            if rev is None:
                trees.append(REPO)
                continue
            subprocess.run(["git", "worktree", "add", "--detach", str(tmp / label), rev], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            trees.append(tmp / label)
        try:
            for label, tree in zip(("before", "after"), trees):
                run_tree(tree, tmp / f"{label}-out")
            print(f"{args.before} vs {args.after or 'working tree'}:")
            print("\n".join(compare(tmp / "before-out", tmp / "after-out")))
        finally:
            for tree in trees:
                if tree != REPO:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


if __name__ == "__main__":
    main()
