"""Per-atom spectrum surrogate (XANES / EXAFS): the score network's graph backbone with a spectrum decoder.

Kwon et al. 2024 Sec. 4.3 (a GNN forward model, per-atom 100-point C K-edge XANES averaged over atoms) and
GLASS (XANES / EXAFS surrogates trained with up to 0.8 Å coordinate noise). The encoder and processor are
:class:`~specguide.models.score.GraphBackbone`, with distance-only edge features (``edge_vectors=False``), so
each atom's spectrum is exactly invariant to rotations, reflections and translations of the structure and
equivariant to permutations of the atoms; the decoder maps node features to ``n_grid`` values, de-normalised
with the training set's mean and spread per grid point (stored as buffers). The grid (eV, Å⁻¹ or a plain
index when the data give none), the absorbing element and the kind are stored in the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from specguide.graph import NeighborGraph, neighbor_graph
from specguide.models.score import GraphBackbone, mlp

KINDS = ("xanes", "exafs")
GRID_UNITS = {"eV": "energy (eV)", "A-1": "k (Å⁻¹)", "index": "grid index (no energies given)"}


@dataclass(frozen=True)
class SurrogateConfig:
    """Hyper-parameters of :class:`SpectrumSurrogate` (stored in every surrogate checkpoint).

    ``cutoff`` 3 Å reaches the second neighbours of carbon (≈ 2.5 Å), so bond angles are seen through
    second-neighbour distances; 4 message-passing layers give a receptive field of ~12 Å.
    """

    species: tuple[int, ...] = (6,)
    n_grid: int = 100
    hidden: int = 64
    n_layers: int = 4
    cutoff: float = 3.0  # Å
    n_rbf: int = 16
    smooth_cutoff: bool = True
    edge_vectors: bool = False  # distance-only edges: exact rotation invariance
    angular_channels: int = 0  # > 0: add the angular invariants of :class:`AngularDensity` (bond angles, planarity)
    l_max: int = 3  # highest angular momentum of those invariants

    def __post_init__(self) -> None:
        species = tuple(int(z) for z in self.species)
        if not species or len(set(species)) != len(species) or any(not 0 < z < 119 for z in species):
            raise ValueError(f"SurrogateConfig.species must be distinct atomic numbers, got {self.species!r}")
        object.__setattr__(self, "species", species)
        if (self.n_grid < 1 or self.hidden < 1 or self.n_layers < 0 or self.n_rbf < 0 or not self.cutoff > 0
                or self.angular_channels < 0 or self.l_max < 0):  # fmt: skip
            raise ValueError(f"invalid SurrogateConfig: {self}")
        if self.edge_vectors:
            raise ValueError("SurrogateConfig.edge_vectors=True would break rotation invariance; keep it False")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["species"] = list(self.species)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SurrogateConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown SurrogateConfig keys {unknown} (written by a newer specguide?)")
        return cls(**{**data, "species": tuple(data.get("species", (6,)))})


class AngularDensity(nn.Module):
    """Rotation-invariant angular features of each atom's neighbour density (the body-order-3 "B" basis of
    ACE / MACE's first product layer, with e3nn's spherical harmonics):

    ``A[i, c, lm] = Σ_j R_c(r_ij, Z_j) f_cut(r_ij) Y_lm(r̂_ij)`` and ``B[i, c, d, l] = Σ_m A[i, c, lm] A[i, d, lm]``
    (c ≤ d). By the addition theorem ``B`` sums ``R_c(r_ij) R_d(r_ik) P_l(cos θ_jik)`` over neighbour pairs,
    so it sees bond angles and planarity (l = 1…3 separate sp, sp² and sp³ neighbourhoods) without
    enumerating triplets; cost is linear in the edges. ``R_c`` is learned from the radial basis and the
    neighbour's species. Output: ``[N, hidden]`` (added to the backbone's node encoding).
    """

    def __init__(self, n_rbf: int, n_species: int, channels: int, l_max: int, hidden: int):
        super().__init__()
        from e3nn import o3

        self.irreps = o3.Irreps.spherical_harmonics(l_max)
        self.l_max, self.channels = l_max, channels
        self.radial = mlp(n_rbf + n_species, hidden, channels, layer_norm=False)
        upper = torch.triu_indices(channels, channels)
        self.register_buffer("upper", upper, persistent=False)
        # index of each (l, m) component's l, to sum over m
        degrees = torch.arange(l_max + 1)
        self.register_buffer("degree", torch.repeat_interleave(degrees, 2 * degrees + 1), persistent=False)
        self.out = mlp(upper.shape[1] * (l_max + 1), hidden, hidden)

    def forward(
        self, graph: NeighborGraph, radial_input: torch.Tensor, envelope: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        return self.out(self.invariants(graph, radial_input, envelope, n_atoms).flatten(1))

    def invariants(
        self, graph: NeighborGraph, radial_input: torch.Tensor, envelope: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        """``B [N, channel pairs, l_max + 1]``."""
        from e3nn import o3

        i = graph.edge_index[0]
        harmonics = o3.spherical_harmonics(self.irreps, graph.vectors.to(radial_input.dtype), normalize=True,
                                           normalization="component")  # fmt: skip
        weights = self.radial(radial_input) * envelope[:, None]  # [E, C]
        density = torch.zeros(n_atoms, self.channels, harmonics.shape[1], dtype=radial_input.dtype,
                              device=radial_input.device)  # fmt: skip
        density = density.index_add(0, i, weights[:, :, None] * harmonics[:, None, :])  # [N, C, (l+1)²]
        c, d = self.upper
        products = density[:, c, :] * density[:, d, :]  # [N, pairs, (l+1)²]
        invariants = torch.zeros(n_atoms, products.shape[1], self.l_max + 1, dtype=products.dtype,
                                 device=products.device).index_add(2, self.degree, products)  # fmt: skip
        return invariants


class SpectrumSurrogate(GraphBackbone):
    """Per-atom spectra ``[N, n_grid]`` of a batch of periodic structures.

    ``forward(positions [N,3] Å, cells [S,3,3] Å, numbers [N], batch [N] | None)``; differentiable in the
    positions. Outputs are ``mean + scale * decoder(h)`` with the stored normalisation.
    """

    def __init__(self, config: SurrogateConfig | None = None):
        super().__init__(config or SurrogateConfig())
        c = self.config
        self.decoder = mlp(c.hidden, c.hidden, c.n_grid, layer_norm=False)
        self.angular = (
            AngularDensity(c.n_rbf, len(c.species), c.angular_channels, c.l_max, c.hidden)
            if c.angular_channels
            else None
        )
        self.register_buffer("out_mean", torch.zeros(c.n_grid))
        self.register_buffer("out_scale", torch.ones(c.n_grid))

    def set_normalisation(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Output de-normalisation per grid point (mean and spread of the training spectra)."""
        self.out_mean.copy_(torch.as_tensor(mean, dtype=self.out_mean.dtype))
        self.out_scale.copy_(torch.as_tensor(scale, dtype=self.out_scale.dtype).clamp(min=1e-6))

    def normalised(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor | None = None,
        graph: NeighborGraph | None = None,
    ) -> torch.Tensor:
        """Decoder output before de-normalisation ``[N, n_grid]`` (what training fits)."""
        positions, cells, batch = self.prepare(positions, cells, batch)
        extra = None
        if self.angular is not None:
            if graph is None:
                graph = neighbor_graph(positions, cells, batch, self.config.cutoff)
            extra = self.angular(graph, *self.angular_inputs(graph, numbers), positions.shape[0])
        return self.decoder(self.encode(positions, cells, numbers, batch, graph, node_extra=extra))

    def angular_inputs(self, graph: NeighborGraph, numbers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per edge: ``[radial basis, neighbour species one-hot]`` and the smooth cutoff envelope (1 → 0 at the
        cutoff)."""
        c = self.config
        distances = graph.distances.to(self.dtype)
        rbf = torch.exp(-(((distances[:, None] - self.rbf_centres) / (c.cutoff / c.n_rbf)) ** 2))
        neighbour = self.species_onehot(numbers)[graph.edge_index[1]]
        envelope = 0.5 * (torch.cos(math.pi * (distances / c.cutoff).clamp(max=1.0)) + 1.0)
        return torch.cat([rbf, neighbour], dim=1), envelope

    def forward(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor | None = None,
        graph: NeighborGraph | None = None,
    ) -> torch.Tensor:
        return self.out_mean + self.out_scale * self.normalised(positions, cells, numbers, batch, graph)
