"""Engine backbones other than SD1.5 + AnimateDiff (whose code lives in `models/`, `method/`, `sampling/`)."""
