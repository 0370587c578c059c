"""The paper's method on tensors: schedule, attention recording, guidance energies, semantic masks, templates."""
