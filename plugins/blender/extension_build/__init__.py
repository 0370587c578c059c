"""The steps of `plugins/blender/build.py`: the client wheel, its dependencies' wheels, Blender's builder."""
