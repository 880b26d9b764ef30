"""The defaults of site-specific generation: the bundled model, the materials held out of its training, the site
kinds it trains on."""

from __future__ import annotations

DEFAULT_SITE_MODEL = "O-K_SiO"  # bundled O K-edge model of Si–O sites
DEFAULT_SITE_DATA = "O-K_SiO"  # bundled O K-edge site data set it was trained on
HELD_OUT_MATERIALS = ("alpha-cristobalite", "a-SiO2_2.2")  # held out of training; the first is the evaluation set
TRAIN_KINDS = ("crystal", "perturbed")  # site kinds trained and evaluated on


def split_names(text: str | None) -> list[str]:
    """``"a, b"`` → ``["a", "b"]`` (``[]`` for None or blanks)."""
    return [m.strip() for m in text.split(",") if m.strip()] if text else []
