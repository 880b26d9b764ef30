"""E(n)-equivariant graph network (Satorras, Hoogeboom & Welling, ICML 2021) as a site-cluster denoiser.

Each cluster is a fully connected graph. Layer update (``d_ij = |x_i − x_j|``, Å):
``m_ij = φ_e(h_i, h_j, d_ij², d⁰_ij²)``, ``x_i ← x_i + Σ_j (x_i − x_j)/(d_ij + 1) · φ_x(m_ij)``,
``h_i ← h_i + φ_h(h_i, Σ_j m_ij)``. Coordinates enter only through differences and distances, so the
network is equivariant to rotations, reflections and translations and to permutations of the atoms.
The conditioning spectrum (embedded by a linear layer) is concatenated to every node's features (the paper
puts it on the excited atom only; on 2 CPU cores a small network learns faster when every node sees it),
together with a flag marking the excited atom and the diffusion time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from specguide.models.score import GaussianFourierFeatures


@dataclass
class EGNNConfig:
    """Sizes of the denoiser. ``species``: atomic numbers of the one-hot channels, the absorber's first
    (``n_species``: their count); ``n_spectrum``: spectrum grid length.

    ``n_rbf``: Gaussian radial basis functions of the current distance appended to each edge's input (centres
    0 … ``rbf_max`` in the network's coordinate units, width = spacing); ``n_time_fourier``: Gaussian Fourier
    features of the diffusion time appended to the node input. Both give the small network the sharp
    features it needs to place atoms to a few hundredths of an Å; 0 turns them off (the first bundled model).

    ``prediction``: what the network outputs — ``"x0"`` (the clean coordinates and one-hot species; the
    coordinate output is the EGNN's updated positions, so at low noise it starts from the identity) or
    ``"eps"`` (the added noise, as in EDM; the first bundled model). :mod:`specguide.sites.diffusion` turns
    either into the other.
    """

    species: tuple[int, ...] = (8, 14)
    n_spectrum: int = 200
    spectrum_embed: int = 32
    hidden: int = 64
    layers: int = 4
    max_atoms: int = 40
    n_rbf: int = 32
    rbf_max: float = 3.0
    n_time_fourier: int = 16
    prediction: str = "x0"

    def __post_init__(self) -> None:
        if self.prediction not in ("x0", "eps"):
            raise ValueError(f"prediction must be 'x0' or 'eps', not {self.prediction!r}")
        self.species = tuple(int(z) for z in self.species)
        if len(set(self.species)) != len(self.species) or not self.species:
            raise ValueError(f"species {self.species} must be distinct atomic numbers")

    @property
    def n_species(self) -> int:
        """Width of the one-hot species channels."""
        return len(self.species)

    def to_dict(self) -> dict:
        return asdict(self)


def full_edges(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs i ≠ j within the same graph of a sorted ``batch`` vector: (src, dst) ``[E]``."""
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    per_graph = counts[batch]  # size of each node's graph
    src = torch.repeat_interleave(torch.arange(batch.numel(), device=batch.device), per_graph)
    first = starts[batch].repeat_interleave(per_graph)
    offset = torch.arange(src.numel(), device=batch.device) - torch.repeat_interleave(
        torch.cumsum(per_graph, 0) - per_graph, per_graph
    )
    dst = first + offset
    keep = src != dst
    return src[keep], dst[keep]


class EGNNLayer(nn.Module):
    """One E(n)-equivariant message-passing layer (features ``[N, hidden]``, coordinates ``[N, 3]`` Å)."""

    def __init__(self, hidden: int, n_rbf: int = 0, rbf_max: float = 3.0):
        super().__init__()
        self.edge = nn.Sequential(
            nn.Linear(2 * hidden + 2 + n_rbf, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.register_buffer("rbf_centres", torch.linspace(0.0, rbf_max, n_rbf), persistent=False)
        self.rbf_width = rbf_max / max(n_rbf - 1, 1)
        self.coord = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1, bias=False))
        self.node = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        nn.init.xavier_uniform_(self.coord[-1].weight, gain=0.001)

    def forward(
        self, h: torch.Tensor, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, d0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        diff = x[src] - x[dst]
        d2 = (diff * diff).sum(-1, keepdim=True)
        rbf = torch.exp(-(((d2.sqrt() - self.rbf_centres) / self.rbf_width) ** 2))
        m = self.edge(torch.cat([h[src], h[dst], d2, d0, rbf], -1))
        step = diff / (d2.sqrt() + 1.0) * self.coord(m)
        x = x.index_add(0, src, step)
        agg = torch.zeros_like(h).index_add_(0, src, m)
        h = h + self.node(torch.cat([h, agg], -1))
        return h, x


class SiteDenoiser(nn.Module):
    """EGNN noise predictor for (coordinates, one-hot species) of clusters, conditioned on a spectrum.

    ``forward(x [N,3], h [N,n_species], t [B] in [0,1], spectrum [B,n_spectrum], batch [N], excited [N] bool)``
    → ``(x [N,3], h [N,n_species])``: the clean estimates (``config.prediction == "x0"``) or the noise
    (``"eps"``); the coordinate output is zero on excited atoms (they stay at the origin).
    ``n_atoms_logits(spectrum)`` → ``[B, max_atoms + 1]`` logits of the cluster size.
    """

    def __init__(self, config: EGNNConfig):
        super().__init__()
        self.config = config
        c = config
        self.spec = nn.Linear(c.n_spectrum, c.spectrum_embed)
        self.time_features = GaussianFourierFeatures(c.n_time_fourier, scale=4.0) if c.n_time_fourier else None
        self.embed = nn.Linear(c.n_species + c.spectrum_embed + 2 + 2 * c.n_time_fourier, c.hidden)
        self.layers = nn.ModuleList(EGNNLayer(c.hidden, c.n_rbf, c.rbf_max) for _ in range(c.layers))
        self.out_h = nn.Sequential(nn.Linear(c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.n_species))
        self.size_head = nn.Sequential(
            nn.Linear(c.n_spectrum, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.max_atoms + 1)
        )

    def forward(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        t: torch.Tensor,
        spectrum: torch.Tensor,
        batch: torch.Tensor,
        excited: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = full_edges(batch)
        diff0 = x[src] - x[dst]
        d0 = (diff0 * diff0).sum(-1, keepdim=True)
        s = self.spec(spectrum)[batch]
        time = [t[batch, None].to(h.dtype)]
        if self.time_features is not None:
            time.append(self.time_features(t.to(h.dtype))[batch])
        feats = torch.cat([h, s, excited.to(h.dtype)[:, None], *time], -1)
        feat = self.embed(feats)
        y = x
        for layer in self.layers:
            feat, y = layer(feat, y, src, dst, d0)
        free = (~excited)[:, None].to(x.dtype)
        out_x = y * free if self.config.prediction == "x0" else (y - x) * free
        return out_x, self.out_h(feat)

    def n_atoms_logits(self, spectrum: torch.Tensor) -> torch.Tensor:
        return self.size_head(spectrum)
