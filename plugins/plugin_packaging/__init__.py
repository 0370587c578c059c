"""What both editor plugins' builds ship besides their own code: the client wheel and its dependencies' wheels.

Not named `packaging`: the build scripts put `plugins/` first on sys.path, where that name would
shadow the PyPI `packaging` library the project environment has.
"""
