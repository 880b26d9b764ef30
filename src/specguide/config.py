"""Run configurations as typed dataclasses and their JSON form (``config.json``).

:class:`Config` is the base of :class:`~specguide.diffusion.sampler.GenerateConfig`,
:class:`~specguide.diffusion.guidance.GuidanceConfig` and :class:`~specguide.diffusion.inversion.InvertConfig`:
``to_dict()`` is what ``config.json`` records of a request, ``from_dict()`` reads it back (unknown keys are
ignored, nested configs are rebuilt), so a result can be rerun exactly from its ``config.json``.

JSON has no tuples and no integer keys: per-pair values ``{(a, b): v}`` are written ``{"A-B": v}`` and read back
as pairs of atomic numbers; coordination ranges ``{Si or 14: (lo, hi)}`` keep their keys (digits become ints
again) and become tuples again.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import numbers
import typing
from pathlib import Path
from typing import Any, TypeVar

from specguide.chemistry import pair_values_json, split_pair
from specguide.io import InputError

C = TypeVar("C", bound="Config")


def _json(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        if value and all(isinstance(k, tuple) for k in value):
            return pair_values_json(value)
        return {str(k): _json(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):  # e.g. a VetoSchedule
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    return value


def pairs_from_json(value: Any) -> Any:
    """``{"Si-O": 1.9}`` → ``{(14, 8): 1.9}``; anything else as it is."""
    if isinstance(value, dict) and value and all(isinstance(k, str) and "-" in k for k in value):
        return {split_pair(k): float(v) for k, v in value.items()}
    return value


def ranges_from_json(value: Any) -> Any:
    """``{"Si": [4, 4], "6": [2, 4]}`` → ``{"Si": (4, 4), 6: (2, 4)}``; ``None`` as it is."""
    if value is None:
        return None
    return {int(k) if isinstance(k, str) and k.isdigit() else k: tuple(int(x) for x in v) for k, v in value.items()}


@dataclasses.dataclass
class Config:
    """A typed run configuration; subclasses are dataclasses whose fields are JSON-able or nested configs."""

    def to_dict(self) -> dict:
        """The fields as JSON-able values (nested configs as dicts)."""
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: dict) -> C:
        """The config of ``data`` (as :meth:`to_dict` wrote it); keys that are not fields are ignored."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            kind = hints.get(f.name)
            if isinstance(kind, type) and hasattr(kind, "from_dict") and isinstance(value, dict):
                value = kind.from_dict(value)  # a nested config (or a dataclass with its own from_dict)
            values[f.name] = value
        return cls(**values)

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` (``ValueError`` naming any that is not a field)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no settings {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


def field_names(cls: type[Config]) -> set[str]:
    """The names of ``cls``'s fields."""
    return {f.name for f in dataclasses.fields(cls)}


SEEDS_HELP = "comma-separated seeds and inclusive ranges LO-HI, e.g. 0,1,2 or 0-3 (= 0,1,2,3) or 0-3,10"


def parse_seeds(text: str) -> list[int]:
    """The seeds of ``--seeds`` (:data:`SEEDS_HELP`): ``"0,1,2"`` → [0, 1, 2], ``"0-3,10"`` → [0, 1, 2, 3, 10];
    ``InputError`` naming ``--seeds`` for anything else (not integers, negative, a range LO > HI, a seed twice)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        low, dash, high = part.strip().partition("-")
        try:
            if dash:
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(low))
        except ValueError:
            raise InputError(f"--seeds {text!r}: {part.strip()!r} is neither a seed nor a range LO-HI; give "
                             f"{SEEDS_HELP}") from None  # fmt: skip
    return check_seeds(seeds, f"--seeds {text!r}")


def check_seeds(seeds, what: str = "seeds") -> list[int]:
    """``seeds`` as a list of ints: one or more, each a different non-negative integer (else ``InputError``)."""
    values = list(seeds)
    if not values or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in values):
        raise InputError(f"{what}: give one or more non-negative integer seeds")
    if len(set(values)) != len(values):
        repeated = sorted(s for s, n in collections.Counter(values).items() if n > 1)
        raise InputError(f"{what}: seed {', '.join(map(str, repeated))} given twice; give each seed once")
    return [int(s) for s in values]
