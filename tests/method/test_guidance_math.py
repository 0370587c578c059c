import torch

from motionclone.method.guidance import motion_energy, sparse_mask, sparse_template


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
