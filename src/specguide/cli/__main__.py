"""``python -m specguide.cli``: the ``specguide`` command."""

from specguide.cli.common import run

run()
