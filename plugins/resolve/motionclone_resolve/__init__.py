"""The MotionClone script for DaVinci Resolve: Resolve glue around `motionclone_client`.

`MotionClone.py` (the file Resolve lists under Workspace > Scripts) puts this package and its
vendored dependencies on `sys.path` and calls `app.main`. Only this package touches Resolve's API;
the daemon is reached through `motionclone_client.DaemonClient` alone.
"""
