"""Measuring what was cloned: motion fidelity from point tracks, CLIP scores, and review images."""
