"""Training data on disk: melt-quench MD sets (:mod:`.md`) and structures with per-atom spectra (:mod:`.spectra`)."""
