"""Score network of the structural prior: a MeshGraphNets encoder–processor–decoder on a periodic graph.

Architecture (Kwon et al. 2024 Sec. 4.5; GLASS Methods):

- encoder: node ``h_i = M_H(onehot(z_i)) + M_T(GaussianRFF(t))``; edge ``e_ij = M_E([r_ij, |r_ij|])``
  (optionally concatenated with a Gaussian radial basis of ``|r_ij|``), with ``r_ij = r_j - r_i`` under
  periodic boundaries within ``cutoff``;
- processor: ``n_layers`` MeshGraphNets blocks with residual updates
  ``e_ij += M([e_ij, h_i, h_j])`` then ``h_i += M([h_i, sum_j w(r_ij) e_ij])`` (``w`` a smooth cosine
  envelope when ``smooth_cutoff``, else 1);
- decoder: ``M_O(h_i)`` -> 3-vector, divided by ``sigma(t) = k t`` so the output is a score in Å⁻¹
  (``score ~ -eps / sigma``).

Encoder / processor MLPs are Linear–SiLU–Linear–LayerNorm, the decoder has no LayerNorm (as in the paper).
The network is translation invariant and permutation equivariant by construction; rotation equivariance
is learned by augmentation, not built in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from specguide.graph import NeighborGraph, neighbor_graph
from specguide.models.schedule import VESchedule

# edges per chunk when the network runs without autograd (sampling): 16,384 edges x 64 features x 4 bytes is 4 MiB,
# well below glibc's mmap threshold, so a large cell's temporaries are reused from the heap instead of being mapped
# and zero-filled afresh at every step (the page faults that made a step grow faster than the atoms: docs/benchmarks.md)
EDGE_CHUNK = 16_384


@dataclass(frozen=True)
class ScoreNetworkConfig:
    """Hyper-parameters of :class:`ScoreNetwork` (stored in every prior checkpoint).

    The default is sized for CPU training and sampling: width 64, 4 layers, cutoff 3 Å, an 8-function
    radial basis and a smooth cutoff envelope. On a-C MD snapshots it learned fastest per CPU-second of the
    variants tried (held-out DSM loss after 600 steps: 0.81 vs 0.87 at 3.5 Å and ~0.94 at 4 Å after 400);
    :meth:`paper` gives the published size (width 200, 5 layers, cutoff 5 Å, plain ``[r_ij, |r_ij|]`` edges).
    """

    species: tuple[int, ...] = (6,)  # atomic numbers the one-hot encoding covers, in this order
    hidden: int = 64  # node / edge / time feature width
    n_layers: int = 4  # message-passing (processor) blocks
    cutoff: float = 3.0  # Å, graph cutoff (as the public a-C notebook; ~12 neighbours in a-C at 2 g/cm³)
    n_fourier: int = 32  # Gaussian random Fourier features of t (sin and cos each)
    fourier_scale: float = 16.0  # std of the random frequencies (t is in (0, 1))
    n_rbf: int = 8  # Gaussian radial basis functions of |r_ij| appended to [r_ij, |r_ij|]; 0 = paper
    smooth_cutoff: bool = True  # cosine envelope on aggregated messages: score continuous in positions
    k: float = 0.8  # Å, sigma(t) = k t (the network divides its output by sigma)

    def __post_init__(self) -> None:
        species = tuple(int(z) for z in self.species)
        if not species:
            raise ValueError("ScoreNetworkConfig.species is empty: give at least one atomic number")
        if len(set(species)) != len(species) or any(not 0 < z < 119 for z in species):
            raise ValueError(f"ScoreNetworkConfig.species must be distinct atomic numbers, got {self.species!r}")
        object.__setattr__(self, "species", species)
        if self.hidden < 1 or self.n_layers < 0 or self.n_fourier < 1 or self.n_rbf < 0:
            raise ValueError(f"invalid ScoreNetworkConfig sizes: {self}")
        if not self.cutoff > 0 or not self.k > 0:
            raise ValueError(f"ScoreNetworkConfig needs cutoff > 0 and k > 0, got {self.cutoff}, {self.k}")

    @classmethod
    def paper(cls, species: tuple[int, ...] = (6,), **overrides) -> ScoreNetworkConfig:
        """The published prior (GLASS / public Kwon checkpoint): width 200, 5 layers, cutoff 5 Å, k 0.8 Å."""
        options = dict(species=tuple(species), hidden=200, n_layers=5, cutoff=5.0, n_rbf=0, smooth_cutoff=False)
        options.update(overrides)
        return cls(**options)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["species"] = list(self.species)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ScoreNetworkConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ScoreNetworkConfig keys {unknown} (written by a newer specguide?)")
        data = dict(data)
        if "species" in data:
            data["species"] = tuple(data["species"])
        return cls(**data)

    def with_(self, **changes) -> ScoreNetworkConfig:
        return replace(self, **changes)


def mlp(n_in: int, hidden: int, n_out: int, layer_norm: bool = True) -> nn.Sequential:
    """Linear–SiLU–Linear(–LayerNorm), the building block of every encoder / processor MLP."""
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out)]
    if layer_norm:
        layers.append(nn.LayerNorm(n_out))
    return nn.Sequential(*layers)


class GaussianFourierFeatures(nn.Module):
    """``[sin(2 pi W t), cos(2 pi W t)]`` with fixed ``W ~ N(0, scale^2)`` (Tancik et al. 2020)."""

    def __init__(self, n_features: int, scale: float, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", torch.randn(n_features, generator=generator) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * t[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class ProcessorBlock(nn.Module):
    """One MeshGraphNets message-passing block with residual edge and node updates.

    The first layer of the edge MLP acts on ``[e_ij, h_i, h_j]``; it is applied as
    ``W_e e_ij + (W_i h)_i + (W_j h)_j`` (the same linear map) so the node terms cost per atom, not per edge.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.edge_in = nn.Linear(hidden, hidden)
        self.edge_in_i = nn.Linear(hidden, hidden, bias=False)
        self.edge_in_j = nn.Linear(hidden, hidden, bias=False)
        self.edge_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.LayerNorm(hidden))
        self.node_mlp = mlp(2 * hidden, hidden, hidden)

    def forward(
        self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_grad_enabled() and e.shape[0] > EDGE_CHUNK:
            return self.forward_in_chunks(h, e, edge_index, weight)
        i, j = edge_index
        pre = self.edge_in(e) + self.edge_in_i(h).index_select(0, i) + self.edge_in_j(h).index_select(0, j)
        e = e + self.edge_out(pre)
        messages = e if weight is None else e * weight[:, None]
        aggregated = torch.zeros_like(h).index_add(0, i, messages)
        h = h + self.node_mlp(torch.cat([h, aggregated], dim=-1))
        return h, e

    def forward_in_chunks(
        self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` without autograd, ``EDGE_CHUNK`` edges at a time: ``e`` is updated in place and no
        temporary holds more than one chunk of edges (the same arithmetic, summed in the same order)."""
        i, j = edge_index
        node_i, node_j = self.edge_in_i(h), self.edge_in_j(h)
        aggregated = torch.zeros_like(h)
        for start in range(0, e.shape[0], EDGE_CHUNK):
            part = slice(start, start + EDGE_CHUNK)
            i_part, j_part, e_part = i[part], j[part], e[part]
            pre = self.edge_in(e_part) + node_i.index_select(0, i_part) + node_j.index_select(0, j_part)
            e_part += self.edge_out(pre)
            aggregated.index_add_(0, i_part, e_part if weight is None else e_part * weight[part, None])
        h = h + self.node_mlp(torch.cat([h, aggregated], dim=-1))
        return h, e


class GraphBackbone(nn.Module):
    """Encoder + processor shared by the score network and the spectrum surrogates.

    ``config`` needs ``species``, ``hidden``, ``n_layers``, ``cutoff``, ``n_rbf`` and ``smooth_cutoff``;
    ``edge_vectors`` (default True) puts ``r_ij`` into the edge input (``[r_ij, |r_ij|, rbf]``, as the score
    network); False keeps only ``[|r_ij|, rbf]``, which makes every node feature invariant to rotations and
    reflections by construction. :meth:`encode` returns node features ``h [N, hidden]``; subclasses add a
    decoder.
    """

    def __init__(self, config):
        super().__init__()
        self.config = c = config
        self.edge_vectors = bool(getattr(c, "edge_vectors", True))
        table = torch.full((119,), -1, dtype=torch.long)
        for index, z in enumerate(c.species):
            table[z] = index
        self.register_buffer("species_index", table, persistent=False)
        self.node_encoder = mlp(len(c.species), c.hidden, c.hidden)
        self.edge_encoder = mlp((4 if self.edge_vectors else 1) + c.n_rbf, c.hidden, c.hidden)
        if c.n_rbf:
            self.register_buffer("rbf_centres", torch.linspace(0.0, c.cutoff, c.n_rbf), persistent=False)
        self.processor = nn.ModuleList(ProcessorBlock(c.hidden) for _ in range(c.n_layers))

    @property
    def dtype(self) -> torch.dtype:
        return self.node_encoder[0].weight.dtype

    def species_onehot(self, numbers: torch.Tensor) -> torch.Tensor:
        index = self.species_index.to(numbers.device)[numbers.long()]
        if bool((index < 0).any()):
            unknown = sorted({int(z) for z in numbers[index < 0].tolist()})
            raise ValueError(
                f"atomic numbers {unknown} are not among the species this network was trained on "
                f"{list(self.config.species)}"
            )
        return nn.functional.one_hot(index, len(self.config.species)).to(self.dtype)

    def prepare(
        self, positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cast to the network dtype, give ``cells`` a structure axis and ``batch`` a default."""
        positions = positions.to(self.dtype)
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        cells = cells.to(self.dtype)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        return positions, cells, batch

    def encode(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor,
        graph: NeighborGraph | None = None,
        node_extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Node features ``[N, hidden]`` after the processor (``node_extra`` is added to the node encoding)."""
        c = self.config
        dtype = self.dtype
        if graph is None:
            graph = neighbor_graph(positions, cells, batch, c.cutoff)
        distances = graph.distances.to(dtype)
        h = self.node_encoder(self.species_onehot(numbers))
        if node_extra is not None:
            h = h + node_extra
        vectors = graph.vectors.to(dtype)
        if not torch.is_grad_enabled() and distances.shape[0] > EDGE_CHUNK:
            e = h.new_empty((distances.shape[0], c.hidden))
            for start in range(0, e.shape[0], EDGE_CHUNK):
                part = slice(start, start + EDGE_CHUNK)
                e[part] = self.encode_edges(vectors[part], distances[part])
        else:
            e = self.encode_edges(vectors, distances)
        weight = None
        if c.smooth_cutoff:
            weight = 0.5 * (torch.cos(math.pi * (distances / c.cutoff).clamp(max=1.0)) + 1.0)
        for block in self.processor:
            h, e = block(h, e, graph.edge_index, weight)
        return h

    def encode_edges(self, vectors: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        """Edge features ``[E, hidden]`` from ``r_ij`` (Å, ``[E, 3]``) and ``|r_ij|`` (Å, ``[E]``)."""
        c = self.config
        edge_input = [vectors, distances[:, None]] if self.edge_vectors else [distances[:, None]]
        if c.n_rbf:
            width = c.cutoff / c.n_rbf
            edge_input.append(torch.exp(-(((distances[:, None] - self.rbf_centres) / width) ** 2)))
        return self.edge_encoder(torch.cat(edge_input, dim=-1))


class ScoreNetwork(GraphBackbone):
    """Score ``s(x_t, t)`` (Å⁻¹, ``[N, 3]``) of a batch of periodic structures.

    ``forward(positions [N,3] Å, cells [S,3,3] Å (rows), numbers [N], batch [N], t [S] or float)``; the
    periodic graph is built inside (``neighbor_graph`` at ``config.cutoff``) unless ``graph`` is given.
    Inputs of any float dtype are cast to the network's dtype (float32 by default), and so is the output.
    """

    def __init__(self, config: ScoreNetworkConfig | None = None):
        super().__init__(config or ScoreNetworkConfig())
        c = self.config
        self.time_features = GaussianFourierFeatures(c.n_fourier, c.fourier_scale)
        self.time_encoder = mlp(2 * c.n_fourier, c.hidden, c.hidden)
        self.decoder = mlp(c.hidden, c.hidden, 3, layer_norm=False)
        # the score starts at zero (DSM loss 1.0) instead of a random field of order 1/sigma
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    @property
    def schedule(self) -> VESchedule:
        """The :class:`~specguide.models.schedule.VESchedule` this network was built for."""
        return VESchedule(k=self.config.k)

    def forward(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor | None,
        t: torch.Tensor | float,
        graph: NeighborGraph | None = None,
    ) -> torch.Tensor:
        positions, cells, batch = self.prepare(positions, cells, batch)
        dtype = self.dtype
        n_structures = cells.shape[0]
        t = torch.as_tensor(t, dtype=dtype, device=positions.device)
        if t.dim() == 0:
            t = t.expand(n_structures)
        if t.shape != (n_structures,):
            raise ValueError(f"t must be a scalar or one value per structure ({n_structures}), got {tuple(t.shape)}")
        time_term = self.time_encoder(self.time_features(t)).index_select(0, batch)
        h = self.encode(positions, cells, numbers, batch, graph, node_extra=time_term)
        sigma = self.config.k * t
        return self.decoder(h) / sigma.index_select(0, batch)[:, None]
