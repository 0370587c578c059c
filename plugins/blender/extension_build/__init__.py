"""The Blender-only steps of `plugins/blender/build.py`: run Blender's builder, check its zips."""
