import torch

from motionclone.guidance import (
    centroid_gaussian,
    motion_energy,
    region_means,
    region_weights,
    sparse_mask,
    sparse_template,
)


def _probs(tokens=6, heads=2, frames=5, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tokens, heads, frames, frames, generator=generator).softmax(-1)


def test_top1_template_keeps_one_entry_per_query_equal_to_dense_attention():
    probs = _probs()
    values, indices = sparse_template(probs, top_k=1)
    assert values.shape == indices.shape == (6, 2, 5, 1)
    mask = sparse_mask(indices, frames=5)
    assert mask.shape == probs.shape
    assert (mask.sum(-1) == 1).all()
    assert torch.equal(probs[mask].reshape(values.shape), values)
    assert torch.equal(values[..., 0], probs.max(-1).values)


def test_top_k_keeps_k_entries():
    values, indices = sparse_template(_probs(), top_k=2)
    assert (sparse_mask(indices, 5).sum(-1) == 2).all()
    assert (values[..., 0] >= values[..., 1]).all()


def test_energy_of_reference_against_itself_is_zero_and_positive_otherwise():
    probs = _probs()
    values, indices = sparse_template(probs)
    assert motion_energy(probs, values, indices).item() == 0.0
    assert motion_energy(_probs(seed=1), values, indices).item() > 0.0


def test_energy_is_differentiable_in_the_generated_attention():
    values, indices = sparse_template(_probs())
    generated = _probs(seed=1).requires_grad_(True)
    motion_energy(generated, values, indices).backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0


def test_gaussian_peaks_at_mask_centroid_and_regions_split_the_frame():
    mask = torch.zeros(2, 9, 9)
    mask[0, 1:4, 1:4] = 1
    mask[1, 5:8, 4:7] = 1
    gaussian = centroid_gaussian(mask, sigma=2.0)
    assert gaussian[0, 2, 2] == 1.0 and gaussian[1, 6, 5] == 1.0
    foreground, background = region_weights(mask, sigma=2.0)
    assert (foreground[mask == 0] == 0).all() and (background[mask == 1] == 0).all()


def test_region_means_average_keys_over_the_weighted_area():
    keys = torch.zeros(16, 2, 3)
    keys[:8] = 1.0
    weights = torch.zeros(2, 4, 4)
    weights[:, :2] = 1.0
    assert torch.allclose(region_means(keys, weights), torch.ones(2, 3))
