"""SparseCtrl, the AnimateDiff v3 ControlNet that conditions a few frames of a video (keyframes):
found by name like the other parts of a model and loaded beside it for the keyframe presets."""

from __future__ import annotations

from diffusers import SparseControlNetModel

from motionclone.models.loading import MotionCloneModel, load_part
from motionclone.models.tiny import TINY_MODEL_ID, tiny_sparse_control


def load_sparse_control(name: str, kind: str, model: MotionCloneModel) -> SparseControlNetModel:
    """The SparseCtrl model `name` (`tiny-random`, a folder, a single file or a hub id), frozen on
    the model's device and dtype. `kind` ("rgb" or "scribble") only chooses the tiny one's
    architecture: a loaded model's own config says whether it takes latents or pixels."""
    if name == TINY_MODEL_ID:
        net = tiny_sparse_control(kind)
    else:
        net = load_part(SparseControlNetModel, name, "SparseCtrl model")
    net.requires_grad_(False)
    net.eval()
    return net.to(device=model.device, dtype=model.dtype)
