"""CLIP scores of a result: temporal consistency and text alignment, when a CLIP model is at hand.

Temporal consistency is the mean cosine similarity of consecutive frames' CLIP image embeddings;
text alignment the mean cosine similarity of each frame's embedding with the prompt's (CLIP
score without the x100). The model is only ever read from the local Hugging Face cache: without
it the scores are absent with the reason, never zero, so a batch ranking cannot mistake "not
measured" for "bad".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

CLIP_MODEL = "openai/clip-vit-base-patch32"


def _unit(features: Any) -> torch.Tensor:
    tensor = features if isinstance(features, torch.Tensor) else features.pooler_output
    return torch.nn.functional.normalize(tensor.float(), dim=-1)


def clip_scores(frames: np.ndarray, prompt: str | None, model_name: str = CLIP_MODEL) -> dict[str, Any]:
    """{"model", "temporal_consistency", "text_alignment"} or, for what cannot be measured, "absent" reasons."""
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(model_name, local_files_only=True).eval()
        processor = CLIPProcessor.from_pretrained(model_name, local_files_only=True)
    except OSError:
        return {"absent": f"no CLIP model {model_name!r} in the local Hugging Face cache (nothing is downloaded)"}
    scores: dict[str, Any] = {"model": model_name}
    with torch.no_grad():
        images = _unit(model.get_image_features(**processor(images=list(frames), return_tensors="pt")))
        scores["temporal_consistency"] = float((images[1:] * images[:-1]).sum(-1).mean())
        if prompt:
            text = _unit(model.get_text_features(**processor(text=[prompt], return_tensors="pt", padding=True)))
            scores["text_alignment"] = float((images @ text.T).mean())
        else:
            scores["text_alignment_absent"] = "no prompt given"
    return scores
