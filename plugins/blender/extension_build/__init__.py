"""The Blender-only steps of `plugins/blender/build.py`: write the extension zips, check them."""
