"""The package's architecture, checked: every import under src/specguide goes down the layers, never around in a
circle, never into another module's private names, and optional heavy dependencies stay out of module level.

The import graph is read with ``ast`` from the source (module-level *and* function-level imports, so a lazy import
cannot hide a dependency). Layers, lowest first (a module may import its own layer and those below)::

    0  base        specguide (the package root), io, config, structure, graph, chemistry, threads, allocator, extras,
                devices,
                data, executors
    1  leaves      models/, datasets/, simulate/
    2  pretrained  the bundled files and their loaders
    3  observables/
    4  analysis/, sites/, baselines/, plotting
    5  training/
    6  diffusion/  (schedule-free: sampler, guidance, inversion)
    7  api, demo, cli

Rules (each one also shown to fail on a synthetic module that breaks it, so none can pass vacuously):

- no cycle between modules, nor between the packages they make up (a top-level module is its own package);
- no ``from specguide.x import _private`` from another module;
- ``models/`` imports nothing from specguide but the base layer and itself;
- the base layer imports nothing above it;
- nothing outside ``diffusion/`` imports ``specguide.diffusion`` except the CLI, ``api`` and ``demo``;
- every import goes to the importer's layer or below (:data:`LAYERS`);
- the optional dependencies of :data:`OPTIONAL` (extras in pyproject.toml) are imported inside functions only;
- imports are absolute (``from specguide.x import y``), so that this reading of them is complete.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "specguide"
# the base layer; "data" is the package of bundled files (no code)
BASE = {
    "specguide",
    "io",
    "config",
    "structure",
    "graph",
    "chemistry",
    "threads",
    "allocator",
    "extras",
    "data",
    "devices",
    "executors",
}
LAYERS = {
    **dict.fromkeys(BASE, 0),
    **dict.fromkeys(("models", "datasets", "simulate"), 1),
    "pretrained": 2,
    "observables": 3,
    **dict.fromkeys(("analysis", "sites", "baselines", "plotting"), 4),
    "training": 5,
    "diffusion": 6,
    **dict.fromkeys(("api", "demo", "cli"), 7),
}
DIFFUSION_USERS = {"diffusion", "cli", "api", "demo"}
# extras: md, feff, sites, rmc, analysis, cluster (dask, distributed, dask_jobqueue)
OPTIONAL = ("lammps", "feff10", "dscribe", "rmc", "ovito", "dask", "distributed", "dask_jobqueue")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(name: str, source: str) -> list[tuple[str, str | None, int, bool]]:
    """``(imported module, imported name or None, line, at module level)`` for every import in ``source``."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")  # relative imports keep their dots (refused below)
            found += [(module, alias.name, node.lineno, id(node) in top) for alias in node.names]
    return found


def graph_of(sources: dict[str, str], known: set[str]) -> dict[str, list[tuple[str, str | None, int, bool]]]:
    """Module → its specguide imports, each resolved to a known module (``from pkg import module`` counts as an
    import of ``pkg.module``)."""
    out = {}
    for name, source in sources.items():
        edges = []
        for module, imported, line, top in imports_of(name, source):
            if module != PACKAGE and not module.startswith(PACKAGE + "."):
                continue
            target = f"{module}.{imported}" if imported and f"{module}.{imported}" in known else module
            edges.append((target, None if target != module else imported, line, top))
        out[name] = edges
    return out


def package_of(module: str) -> str:
    """``specguide.observables.pdf`` → ``observables``; ``specguide.io`` → ``io``; the root → ``specguide``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph, as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def violations(sources: dict[str, str]) -> list[str]:
    """Every broken rule of the module docstring, one line each (empty: the architecture holds)."""
    known = set(sources)
    graph = graph_of(sources, known)
    problems = []
    module_edges = {m: {t for t, *_ in edges if t in known and t != m} for m, edges in graph.items()}
    if cycle := find_cycle(module_edges):
        problems.append("module cycle: " + " -> ".join(cycle))
    package_edges: dict[str, set[str]] = {}
    for m, targets in module_edges.items():
        package_edges.setdefault(package_of(m), set()).update(package_of(t) for t in targets)
    for package, targets in package_edges.items():
        targets.discard(package)
    if cycle := find_cycle(package_edges):
        problems.append("package cycle: " + " -> ".join(cycle))
    for m, edges in graph.items():
        package = package_of(m)
        if package not in LAYERS:
            problems.append(f"{m}: its package {package!r} has no layer in LAYERS")
            continue
        for target, imported, line, _ in edges:
            where = f"{m}:{line}"
            if imported and imported.startswith("_") and not imported.startswith("__") and target != m:
                problems.append(f"{where}: imports private {imported} from {target}")
            other = package_of(target)
            if target not in known:
                problems.append(f"{where}: imports {target}, which is not a module of {PACKAGE}")
                continue
            if package == "models" and other not in BASE | {"models"}:
                problems.append(f"{where}: models/ imports {target} (only the base layer and models/ allowed)")
            if package in BASE and other not in BASE:
                problems.append(f"{where}: the base layer imports {target}")
            if other == "diffusion" and package not in DIFFUSION_USERS:
                problems.append(f"{where}: imports {target} (only diffusion/, cli, api and demo may)")
            if other in LAYERS and LAYERS[other] > LAYERS[package]:
                above = f"layer {LAYERS[other]} ({target})"
                problems.append(f"{where}: layer {LAYERS[package]} ({package}) imports {above}")
    for m, source in sources.items():
        for module, _, line, top in imports_of(m, source):
            if module.startswith("."):
                problems.append(f"{m}:{line}: relative import {module}; write specguide.… in full")
            if top and module.split(".")[0] in OPTIONAL:
                problems.append(f"{m}:{line}: imports the optional {module} at module level (import it where used)")
    return problems


def read_sources(root: Path) -> dict[str, str]:
    return {module_name(path, root): path.read_text() for path in sorted((root / PACKAGE).rglob("*.py"))}


def test_the_package_keeps_its_layers():
    sources = read_sources(SRC)
    assert len(sources) > 40
    assert {"specguide.pretrained", "specguide.structure", "specguide.models.score"} <= set(sources)
    assert violations(sources) == []


# ----------------------------------------------------------------------------------------------------------------
# the check itself fails where it should: each rule against a synthetic package that breaks it
# ----------------------------------------------------------------------------------------------------------------

CLEAN = {
    "specguide": "",
    "specguide.io": "import json\n",
    "specguide.structure": "from specguide.io import write_json\n",
    "specguide.models": "",
    "specguide.models.score": "from specguide.structure import wrap\nfrom specguide.models import schedule\n",
    "specguide.models.schedule": "import torch\n",
    "specguide.observables": "",
    "specguide.observables.pdf": "from specguide.models.score import Net\n",
    "specguide.diffusion": "",
    "specguide.diffusion.sampler": "from specguide.observables.pdf import G\n\ndef f():\n    import lammps\n",
    "specguide.cli": "from specguide.diffusion.sampler import generate\n",
}


def with_change(module: str, source: str) -> dict[str, str]:
    return {**CLEAN, module: CLEAN.get(module, "") + source}


BROKEN = [
    ("module cycle", with_change("specguide.observables.pdf", "\ndef g():\n    from specguide.cli import main\n")),
    ("package cycle", with_change("specguide.models.extra", "from specguide.observables.pdf import G\n")),
    ("imports private", with_change("specguide.cli", "from specguide.observables.pdf import _kernel\n")),
    ("models/ imports", with_change("specguide.models.score",
                                    "def f():\n    from specguide.observables.pdf import G\n")),
    ("base layer imports", with_change("specguide.structure", "from specguide.models.score import Net\n")),
    ("only diffusion/, cli, api and demo may", with_change("specguide.observables.pdf",
                                                           "def f():\n    import specguide.diffusion.sampler\n")),
    ("layer 3 (observables) imports layer 6", with_change("specguide.observables.pdf",
                                                          "def f():\n    from specguide.diffusion import sampler\n")),
    ("has no layer", with_change("specguide.newpackage", "import torch\n")),
    ("not a module of", with_change("specguide.cli", "from specguide.gone import thing\n")),
    ("optional lammps at module level", with_change("specguide.simulate", "import lammps\n")),
    ("relative import", with_change("specguide.models.score", "from .schedule import VESchedule\n")),
]  # fmt: skip


def test_the_clean_synthetic_package_passes():
    assert violations(CLEAN) == []


@pytest.mark.parametrize(("expected", "sources"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_rule_fails_on_a_module_that_breaks_it(expected: str, sources: dict[str, str]):
    found = violations(sources)
    assert any(expected in line for line in found), found


def test_diffusion_holds_only_the_sampler_guidance_and_inversion():
    """The noise schedule defines the network, so it lives in models/ (the leaf); diffusion/ keeps what samples."""
    names = {path.stem for path in (SRC / PACKAGE / "diffusion").glob("*.py")} - {"__init__"}
    assert names == {"sampler", "guidance", "inversion"}
    assert (SRC / PACKAGE / "models" / "schedule.py").exists()
