"""Wan 2.1 text-to-video as a MotionClone backbone: loading, the tiny test model, flow guidance."""
