"""Delta_ED (GLASS Supplementary 2.6) against a direct numpy evaluation of its definition."""

import numpy as np
import pytest
import torch

from specguide.analysis.delta_ed import delta_ed


def test_matches_the_definition_computed_with_numpy():
    rng = np.random.default_rng(0)
    reference = 1.0 + 0.1 * rng.standard_normal((10, 50))
    generated = 1.05 + 0.2 * rng.standard_normal((6, 50))
    norm = np.abs(reference).max()
    diversity = reference.std(axis=0).mean() / norm
    error = np.abs(generated.mean(0) - reference.mean(0)).mean() / norm
    result = delta_ed(torch.as_tensor(reference), torch.as_tensor(generated))
    assert result["diversity"] == pytest.approx(diversity, rel=1e-12)
    assert result["error"] == pytest.approx(error, rel=1e-12)
    assert result["delta_ed"] == pytest.approx(error - diversity, rel=1e-12)


def test_reference_against_itself_is_within_its_own_diversity():
    rng = np.random.default_rng(1)
    reference = torch.as_tensor(rng.standard_normal((8, 30)))
    result = delta_ed(reference, reference)
    assert result["error"] == pytest.approx(0.0, abs=1e-15)
    assert result["delta_ed"] < 0


def test_features_are_normalised_separately_and_averaged():
    rng = np.random.default_rng(2)
    small = rng.standard_normal((5, 20))
    large = 100 * rng.standard_normal((5, 20))
    both = torch.as_tensor(np.stack([small, large], axis=1))  # [n, 2 features, grid]
    generated = both[:3] + 0.5
    joint = delta_ed(both, generated)
    parts = [delta_ed(both[:, k], generated[:, k]) for k in range(2)]
    assert joint["delta_ed"] == pytest.approx(np.mean([p["delta_ed"] for p in parts]), rel=1e-12)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="grids differ"):
        delta_ed(torch.zeros(3, 10), torch.zeros(3, 11))
    with pytest.raises(ValueError, match="at least two"):
        delta_ed(torch.zeros(1, 10), torch.zeros(3, 10))


def test_truth_moves_the_error_centre_and_keeps_the_reference_diversity():
    rng = np.random.default_rng(3)
    reference = 1.0 + 0.1 * rng.standard_normal((12, 40))
    truth = reference[:2]  # the replicas a target was measured on
    generated = 1.02 + 0.1 * rng.standard_normal((4, 40))
    norm = np.abs(reference).max()
    result = delta_ed(torch.as_tensor(reference), torch.as_tensor(generated), torch.as_tensor(truth))
    assert result["diversity"] == pytest.approx(reference.std(axis=0).mean() / norm, rel=1e-12)
    assert result["error"] == pytest.approx(np.abs(generated.mean(0) - truth.mean(0)).mean() / norm, rel=1e-12)


def test_only_the_truth_reference_scores_the_measured_structures_perfectly():
    rng = np.random.default_rng(4)
    reference = torch.as_tensor(rng.standard_normal((12, 30)))
    measured = reference[:2]
    against_truth = delta_ed(reference, measured, truth=measured)
    against_mean = delta_ed(reference, measured)
    assert against_truth["error"] == pytest.approx(0.0, abs=1e-15)
    assert against_mean["error"] > 0.1 * against_mean["diversity"]


def test_a_truth_on_another_grid_is_refused():
    with pytest.raises(ValueError, match="truth"):
        delta_ed(torch.zeros(3, 10), torch.zeros(3, 10), torch.zeros(2, 11))
