"""Every example of the README runs as written — the expensive ones at tiny sizes (fewer steps and replicas, the
fast preset), named in :data:`TINY` — and the README stays short and user-first."""

import ast
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```(bash|python)\n(.*?)```", TEXT, flags=re.S)

# what is never run here, and why
SKIP = {
    "pip install": "installs the package into a new virtual environment; CI (.ci/run) runs it",
}
# sampling commands run at these sizes (the README's atom counts are kept: cells must hold the targets)
TINY_SAMPLING = ["--steps", "8", "--replicas", "1", "--preset", "fast"]
# python examples: each substitution must apply, so that a changed README cannot skip one silently
TINY = [("n_replicas=2, steps=64, seed=0)", 'n_replicas=1, steps=8, seed=0, preset="fast")')]


def commands(block: str) -> list[str]:
    """The command lines of a bash block (continuations joined, comments dropped)."""
    lines = block.replace("\\\n", " ").splitlines()
    return [line.split(" #")[0].strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def shrink(args: list[str]) -> list[str]:
    """A sampling command at tiny sizes (its own --steps/--replicas/--preset replaced)."""
    if args[0] not in ("generate", "invert") or "--config" in args:
        return args
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in TINY_SAMPLING[::2]:
            skip = True
            continue
        out.append(arg)
    return out + TINY_SAMPLING


def test_the_readme_is_short_and_starts_with_the_two_commands():
    assert len(TEXT.encode()) <= 12_000 and len(TEXT.splitlines()) <= 300
    first = commands(BLOCKS[0][1])
    assert first[0].endswith("specguide demo --force")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == first[1]  # CI runs exactly the README's test command
    for link in re.findall(r"\]\(((?:docs|src|data)/[^)#]+)", TEXT):
        assert (ROOT / link).exists(), link


def test_no_docstring_or_help_text_quotes_a_benchmark_number():
    """Numbers like "94.4 %" or "31.6 s" measured by a run belong in docs/benchmarks.md, not in code."""
    from typer.main import get_command

    from specguide.cli import app

    measured = re.compile(r"\b\d+\.\d+ ?(%|s\b)|Delta_ED [+-−]?\d|rel\. L2 \d")
    helps = []
    command = get_command(app)
    for name, sub in command.commands.items():
        for param in getattr(sub, "params", []):
            helps.append(f"{name} {param.name}: {getattr(param, 'help', '') or ''}")
    assert [h for h in helps if measured.search(h)] == []
    timings = re.compile(r"\d+(\.\d+)?(-\d+(\.\d+)?)?x faster|\d+(\.\d+)? ms\b|Delta_ED [+-−]\d|rel\. L2 \d")
    quoted = []
    for path in sorted((ROOT / "src" / "specguide").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                quoted += [f"{path.name}: {line}" for line in doc.splitlines() if timings.search(line)]
    assert quoted == []


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_every_readme_example_runs(number, tmp_path, monkeypatch):
    from specguide.cli import app

    language, block = BLOCKS[number]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(ROOT / "data")
    if language == "python":
        for old, new in TINY:
            assert old in block, f"README python example changed; update TINY ({old!r})"
            block = block.replace(old, new)
        exec(compile(block, f"README block {number}", "exec"), {})  # noqa: S102 - the README's own example
        return
    ran = 0
    for line in commands(block):
        reason = next((why for text, why in SKIP.items() if text in line), None)
        if reason is not None:
            continue
        args = shlex.split(line)
        assert args[0] == "specguide", f"README command not covered by this test: {line}"
        result = CliRunner().invoke(app, shrink(args[1:]))
        assert result.exit_code == 0, f"{line}\n{result.output}"
        ran += 1
    if number > 0:
        assert ran > 0
