"""specguide: spectroscopy-guided generation of disordered atomic structures."""

from importlib.metadata import PackageNotFoundError, version

from specguide.allocator import tune_malloc_unless_disabled

tune_malloc_unless_disabled()  # keep freed memory for the next step (glibc); SPECGUIDE_TUNE_MALLOC=0 opts out

try:
    __version__ = version("specguide")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
