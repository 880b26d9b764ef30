"""Engines that make training data: LAMMPS melt-quench MD (:mod:`.lammps`), FEFF10 spectra (:mod:`.feff`)."""
