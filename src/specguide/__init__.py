"""specguide: spectroscopy-guided generation of disordered atomic structures."""

from importlib.metadata import PackageNotFoundError, version

from specguide.allocator import tune_malloc_if_asked

tune_malloc_if_asked()  # opt-in (SPECGUIDE_MALLOC_TUNING=1): keep freed memory for the next step (glibc)

try:
    __version__ = version("specguide")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
