"""MotionClone Studio's engine: clone a clip's motion into a new text-described video (`engine.Engine`)."""
