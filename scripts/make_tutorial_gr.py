"""Write the tutorial's PDFgetX3-style G(r) file from the NIMROD silica measurement (data/measured/silica_nimrod).

    python scripts/make_tutorial_gr.py [--qmax 25] [--out data/measured/silica_nimrod/SiO2_NIMROD.gr]

Reads the Gudrun ``.mint01`` (Keen's F(Q), barn/sr/atom) with specguide's reader, converts it to the Faber–Ziman
S(Q) with ⟨b⟩² of SiO2, and Fourier transforms F(Q) = Q[S(Q) − 1] between Qmin and Qmax as PDFgetX3 does,
``G(r) = (2/π) ∫ F(Q) sin(Qr) dQ`` (no window), onto r = 0.01 … 20 Å in 0.01 Å steps. The file carries a
``[PDFgetX3]`` header with mode, composition, qmin and qmax, so specguide terminates its model G(r) the same way.
The output derives from GPL-3.0-or-later data and is distributed under the same licence.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from specguide.observables.datafiles import keen_to_faber_ziman, read_measured

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "measured" / "silica_nimrod" / "SiO2_NIMROD.mint01"
HEADER = """[DEFAULT]

version = specguide scripts/make_tutorial_gr.py (PDFgetX3 layout)

[PDFgetX3]
dataformat = QA
inputfile = SiO2_NIMROD.mint01
mode = neutron
composition = SiO2
qmin = {qmin:g}
qmax = {qmax:g}
rmin = 0.01
rmax = 20
rstep = 0.01
comment = G(r) = (2/pi) int F(Q) sin(Qr) dQ of the NIMROD silica F(Q) (Keen's F / <b>^2), no window; GPL-3.0-or-later

#### start data
#S 1
#L r($\\AA$)  G($\\AA^{{-2}}$)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qmax", type=float, default=25.0)
    parser.add_argument("--qmin", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=SOURCE.with_suffix(".gr"))
    args = parser.parse_args()
    data = read_measured(SOURCE)
    q = data.x
    s = keen_to_faber_ziman(q, data.y, "SiO2")
    inside = (q >= args.qmin) & (q <= args.qmax)
    q, f = q[inside], q[inside] * (s[inside] - 1.0)
    weights = np.gradient(q)  # trapezoid-like quadrature on the measured grid
    r = 0.01 * np.arange(1, 2001)
    g = (2.0 / np.pi) * (np.sin(np.outer(r, q)) * (f * weights)).sum(1)
    text = HEADER.format(qmin=q[0], qmax=q[-1]) + "\n".join(f"{a:.2f} {b:.6f}" for a, b in zip(r, g)) + "\n"
    args.out.write_text(text)
    print(f"wrote {args.out}: G(r) from Q = {q[0]:.3g}–{q[-1]:.3g} Å⁻¹")


if __name__ == "__main__":
    main()
