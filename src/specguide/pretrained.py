"""Everything specguide ships, found one way: a name → file registry per kind, and one loader per kind.

As MACE's ``foundations_models`` maps model names to files, :data:`BUNDLES` maps each kind of bundled file to its
folder under ``specguide/data/defaults`` and its suffix; a name is the file's stem (``--prior a-Si`` is
``priors/a-Si.pt``). Every resolver takes a file path as well (a path that exists always wins), and every loader
reads model files with :func:`specguide.io.load_checkpoint`: tensors and plain data only, so a file that would run
code when unpickled is refused, never executed.

=================  =====================  ==========  =========================================================
kind               folder                 suffix      loader
=================  =====================  ==========  =========================================================
prior              ``priors``             ``.pt``     :func:`load_prior` (a family: the member nearest a density)
surrogate          ``surrogates``         ``.pt``     :func:`load_surrogate`
site model         ``sites``              ``.pt``     :func:`load_site_model`
MD data set        ``md``                 ``.npz``    :func:`load_md_dataset`
site data set      ``sites``              ``.npz``    :func:`specguide.sites.dataset.load_site_dataset`
spectra data set   ``surrogates``         ``.npz``    :func:`specguide.datasets.spectra.load_spectra_bundle`
=================  =====================  ==========  =========================================================

The checkpoint formats written by :mod:`specguide.training` (``*_FORMAT`` and their versions) are defined here,
beside the code that reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np
import torch
from ase.data import chemical_symbols

import specguide
from specguide.datasets.md import read_md_dataset
from specguide.devices import resolve_device
from specguide.io import load_checkpoint
from specguide.models.egnn import EGNNConfig, SiteDenoiser
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.models.surrogate import SpectrumSurrogate, SurrogateConfig

DEFAULTS_DIR = Path(__file__).resolve().parent / "data" / "defaults"
BUNDLED_PRIORS_DIR = DEFAULTS_DIR / "priors"
BUNDLED_SURROGATES_DIR = DEFAULTS_DIR / "surrogates"
BUNDLED_SITES_DIR = DEFAULTS_DIR / "sites"
BUNDLED_MD_DIR = DEFAULTS_DIR / "md"
PRIOR_FAMILIES_FILE = BUNDLED_PRIORS_DIR / "families.json"

PRIOR_FORMAT = "specguide-prior"
PRIOR_FORMAT_VERSION = 1
PRIOR_KEYS = ("format", "format_version", "specguide_version", "network", "k", "state_dict", "data", "training")
SURROGATE_FORMAT = "specguide-surrogate"
SURROGATE_FORMAT_VERSION = 1
SITE_MODEL_FORMAT = "specguide-site-model"
SITE_MODEL_VERSION = 1  # files from before the format key read as this version (same contents)


@dataclass(frozen=True)
class Bundle:
    """One kind of bundled file: what it is called in messages, its folder (looked up when asked, so that a test
    can point it elsewhere), its suffix, and the fix an error for a missing one names."""

    what: str
    folder: Callable[[], Path]
    suffix: str
    fix: str = ""


BUNDLES: dict[str, Bundle] = {
    bundle.what: bundle
    for bundle in (
        Bundle("prior", lambda: BUNDLED_PRIORS_DIR, ".pt", "; train one with specguide train-prior"),
        Bundle("surrogate", lambda: BUNDLED_SURROGATES_DIR, ".pt", "; train one with specguide train-surrogate"),
        Bundle("site model", lambda: BUNDLED_SITES_DIR, ".pt", "; train one with specguide sites train"),
        Bundle("MD data set", lambda: BUNDLED_MD_DIR, ".npz", "; make one with scripts/build_md_datasets.py"),
        Bundle("site data set", lambda: BUNDLED_SITES_DIR, ".npz", "; build one with scripts/build_site_dataset.py"),
        Bundle("spectra data set", lambda: BUNDLED_SURROGATES_DIR, ".npz", "; scripts/build_surrogate_dataset.py"),
    )
}


def _bundle(kind: str) -> Bundle:
    if kind not in BUNDLES:
        raise ValueError(f"unknown kind of bundled file {kind!r}; known: {', '.join(BUNDLES)}")
    return BUNDLES[kind]


def folder(kind: str) -> Path:
    """The folder that holds the bundled files of ``kind`` (a key of :data:`BUNDLES`)."""
    return _bundle(kind).folder()


def bundled(kind: str) -> dict[str, Path]:
    """Name → file of every bundled file of ``kind``, sorted by name."""
    bundle = _bundle(kind)
    return {path.stem: path for path in sorted(bundle.folder().glob(f"*{bundle.suffix}"))}


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """The file of a bundled ``kind`` by name, or ``name_or_path`` itself where that file exists.

    Raises ``FileNotFoundError`` naming what was asked, the bundled names and the fix."""
    bundle = _bundle(kind)
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = bundle.folder() / f"{name_or_path}{bundle.suffix}"
    if candidate.is_file():
        return candidate
    names = ", ".join(bundled(kind)) or "none"
    what = bundle.what
    raise FileNotFoundError(f"{path}: no such {what} file or bundled {what} (bundled: {names}){bundle.fix}")


def default_md_dir() -> Path:
    """Folder of the bundled melt–quench data sets (and their data card)."""
    return folder("MD data set")


def default_surrogates_dir() -> Path:
    """Folder of the bundled surrogates, their training data and test spectra."""
    return folder("surrogate")


def default_sites_dir() -> Path:
    """Folder of the bundled site model and site data set."""
    return folder("site model")


# ----------------------------------------------------------------------------------------------------------------
# priors
# ----------------------------------------------------------------------------------------------------------------


def bundled_priors() -> list[str]:
    """Names of the priors shipped with the package (``--prior a-Si``)."""
    return list(bundled("prior"))


def prior_families() -> dict[str, dict[float, str]]:
    """Bundled priors that are a set of members, one per training density: name -> {g/cm³: member name}.

    ``--prior a-Si`` at a given density loads the member trained nearest to it (see :func:`resolve_prior`);
    each member is itself a bundled prior (``a-Si@1.5``) that can be named directly.
    """
    if not PRIOR_FAMILIES_FILE.is_file():
        return {}
    raw = json.loads(PRIOR_FAMILIES_FILE.read_text())
    return {name: {float(d): member for d, member in members.items()} for name, members in raw.items()}


def resolve_prior(name_or_path: str | Path, density_g_cm3: float | None = None) -> Path:
    """A checkpoint path from a bundled prior's name or a file path.

    For a bundled family (:func:`prior_families`) and a ``density_g_cm3``, the member trained at the nearest
    density; without a density, the file of that name. A file path is never redirected.
    """
    if density_g_cm3 is not None and not Path(name_or_path).is_file():
        members = prior_families().get(str(name_or_path))
        if members:
            nearest = min(sorted(members), key=lambda d: abs(d - float(density_g_cm3)))
            name_or_path = members[nearest]
    return resolve("prior", name_or_path)


def load_prior(
    path: str | Path, map_location: str | torch.device = "cpu", density_g_cm3: float | None = None
) -> tuple[ScoreNetwork, dict]:
    """Read a prior written by :func:`specguide.training.prior.train_prior` (or a bundled prior by name, e.g.
    ``"a-Si"``); returns ``(network in eval mode, metadata)``; ``metadata["path"]`` is the file read.

    ``density_g_cm3`` (g/cm³) picks the member of a bundled prior family trained nearest to that density
    (:func:`resolve_prior`). ``map_location``: the device the network is put on (``"auto"`` and the other forms
    of :func:`specguide.devices.resolve_device` too). Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming the file and the problem for anything that is not a compatible specguide prior.
    """
    path = resolve_prior(path, density_g_cm3)
    device = resolve_device(map_location, "map_location")
    payload = load_checkpoint(path, "specguide prior checkpoint", "train one with specguide train-prior")
    if not isinstance(payload, dict) or payload.get("format") != PRIOR_FORMAT:
        hint = ""
        if isinstance(payload, dict) and "pytorch-lightning_version" in payload:
            hint = " (it is a Lightning training checkpoint: pass the .pt file written next to it)"
        raise ValueError(f"{path}: not a specguide prior checkpoint{hint}")
    missing = [key for key in PRIOR_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path}: specguide prior checkpoint is missing {missing}; the file is incomplete")
    if payload["format_version"] != PRIOR_FORMAT_VERSION:
        raise ValueError(
            f"{path}: prior checkpoint format version {payload['format_version']} is not supported by specguide "
            f"{specguide.__version__} (expects version {PRIOR_FORMAT_VERSION}); retrain or use the matching specguide"
        )
    try:
        config = ScoreNetworkConfig.from_dict(payload["network"])
        network = ScoreNetwork(config)
        network.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{path}: prior checkpoint network does not match its weights ({first[:200]})") from None
    if abs(float(payload["k"]) - config.k) > 1e-12:
        raise ValueError(f"{path}: prior checkpoint is inconsistent (k={payload['k']} vs network k={config.k})")
    network.to(device).eval()
    meta = {key: value for key, value in payload.items() if key != "state_dict"}
    meta["path"] = str(path)
    network.prior_meta = meta  # generate() takes the chemistry and presets the checkpoint records from here
    return network, meta


# ----------------------------------------------------------------------------------------------------------------
# surrogates
# ----------------------------------------------------------------------------------------------------------------


def bundled_surrogates() -> list[str]:
    """Names of the surrogates shipped with the package (``--surrogate Si-K_EXAFS``)."""
    return list(bundled("surrogate"))


def resolve_surrogate(name_or_path: str | Path) -> Path:
    """A checkpoint path from a bundled surrogate's name or a file path."""
    return resolve("surrogate", name_or_path)


def load_surrogate(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[SpectrumSurrogate, dict]:
    """Read a surrogate written by :func:`specguide.training.surrogate.save_surrogate` (or a bundled one by name,
    e.g. ``"Si-K_EXAFS"``); returns ``(network in eval mode, metadata)``.

    Metadata holds ``kind``, ``absorber`` (atomic number), ``grid`` (list), ``grid_unit`` and provenance.
    ``map_location``: the device the network is put on (as :func:`load_prior`). ``FileNotFoundError`` /
    ``ValueError`` naming the file for anything unusable.
    """
    path = resolve_surrogate(path)
    device = resolve_device(map_location, "map_location")
    payload = load_checkpoint(path, "specguide surrogate checkpoint", "train one with specguide train-surrogate")
    if not isinstance(payload, dict) or payload.get("format") != SURROGATE_FORMAT:
        raise ValueError(f"{path}: not a specguide surrogate checkpoint (train one with specguide train-surrogate)")
    if payload.get("format_version") != SURROGATE_FORMAT_VERSION:
        raise ValueError(f"{path}: surrogate format version {payload.get('format_version')} is not supported")
    try:
        network = SpectrumSurrogate(SurrogateConfig.from_dict(payload["network"]))
        network.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: surrogate checkpoint is incomplete or inconsistent ({first[:200]})") from None
    network.to(device).eval()
    meta = {key: value for key, value in payload.items() if key != "state_dict"}
    meta["path"] = str(path)
    meta["absorber_symbol"] = chemical_symbols[int(payload["absorber"])]
    return network, meta


# ----------------------------------------------------------------------------------------------------------------
# site models
# ----------------------------------------------------------------------------------------------------------------


def resolve_site_model(name_or_path: str | Path) -> Path:
    """A checkpoint path from a bundled site model's name (``O-K_SiO``) or a file path."""
    return resolve("site model", name_or_path)


def load_site_model(name_or_path: str | Path, map_location: str | torch.device = "cpu") -> tuple[SiteDenoiser, dict]:
    """Load a site model onto the device ``map_location`` (as :func:`load_prior`); returns ``(model in eval mode,
    metadata: grid (eV), spectrum_scale, species, log)``."""
    path = resolve_site_model(name_or_path)
    fix = "train one with specguide sites train"
    device = resolve_device(map_location, "map_location")
    payload = load_checkpoint(path, "specguide site model", fix)  # read on the CPU, the model then moved
    if not isinstance(payload, dict) or payload.get("format", SITE_MODEL_FORMAT) != SITE_MODEL_FORMAT:
        kind = f" (it is a {payload['format']} checkpoint)" if isinstance(payload, dict) and "format" in payload else ""
        raise ValueError(f"{path}: not a specguide site model{kind}; {fix}")
    version = payload.get("format_version", SITE_MODEL_VERSION)
    if version != SITE_MODEL_VERSION or not {"config", "state_dict", "grid"} <= set(payload):
        raise ValueError(f"{path}: site model format version {version} or its contents are not supported; {fix}")
    config = dict(payload["config"])
    # models saved before these options existed: noise prediction, no radial basis, no Fourier time features
    for key, old in (("prediction", "eps"), ("n_rbf", 0), ("n_time_fourier", 0)):
        config.setdefault(key, old)
    config.setdefault("species", payload.get("species", [8, 14]))  # before it was a config field: O, Si
    if config.pop("n_species", len(config["species"])) != len(config["species"]):
        raise ValueError(f"{path}: its config's n_species and species disagree; {fix}")
    model = SiteDenoiser(EGNNConfig(**config))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["grid"] = np.asarray(meta["grid"])
    meta["path"] = str(path)
    return model, json.loads(json.dumps(meta, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


# ----------------------------------------------------------------------------------------------------------------
# MD data sets
# ----------------------------------------------------------------------------------------------------------------


def list_md_datasets() -> list[str]:
    """Names of the bundled MD data sets (``a-Si_2.5``, ``a-C_2.0``, ...)."""
    return list(bundled("MD data set"))


def load_md_dataset(name_or_path: str | Path, split: str | None = None) -> list[ase.Atoms]:
    """A bundled MD data set by name (``"a-Si_2.5"``) or an ``.npz`` written by ``scripts/build_md_datasets.py``
    (:func:`specguide.datasets.md.read_md_dataset`). ``split``: None (all), 'train' or 'test' (held-out replicas)."""
    return read_md_dataset(resolve("MD data set", name_or_path), split)


# a family's example: its middle density; the Cu–Zr glass's: Cu64Zr36 (the usual composition) at 100 K/ps
EXAMPLES = {"a-Si": "a-Si_2.5", "a-C": "a-C_2.0", "a-SiO2": "a-SiO2_2.2", "a-CuZr": "Cu64Zr36_q100"}


def example_structure(name: str) -> ase.Atoms:
    """A held-out replica of a bundled MD data set (``"a-Si_1.5"``, or a family name: ``"a-Si"`` is ``a-Si_2.5``);
    ``ValueError`` naming the data sets for anything else."""
    dataset = EXAMPLES.get(name, name)
    if dataset not in list_md_datasets():
        raise ValueError(f"no bundled data set {name!r}; choose one of {', '.join(list_md_datasets())}")
    held_out = load_md_dataset(dataset, split="test") or load_md_dataset(dataset)
    return held_out[0]
