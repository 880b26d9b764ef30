"""Command line: one module per command group, each only parsing options and printing; the work is done by
:mod:`specguide.api` and the modules it names. Bad input → one line naming the file and the fix, exit 2.

- :mod:`~specguide.cli.common`: the app, its global options, errors, result folders, resumable runs;
- :mod:`~specguide.cli.spectra`: ``spectrum``, ``example``;
- :mod:`~specguide.cli.md`: ``md melt-quench``;
- :mod:`~specguide.cli.training`: ``train-prior``, ``train-surrogate``;
- :mod:`~specguide.cli.sampling`: ``generate``, ``invert``, ``demo``;
- :mod:`~specguide.cli.sites`: ``sites train | generate | evaluate``;
- :mod:`~specguide.cli.analysis`: ``analyze``.
"""

from __future__ import annotations

import importlib

from specguide.cli.common import app, run

COMMAND_MODULES = ("spectra", "md", "training", "sampling", "sites", "analysis")  # each registers its commands; --help
for _module in COMMAND_MODULES:  # lists them in this order
    importlib.import_module(f"specguide.cli.{_module}")

from specguide.cli.spectra import Kind  # noqa: E402 - after the commands are registered

__all__ = ["Kind", "app", "run"]
