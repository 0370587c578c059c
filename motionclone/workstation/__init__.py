"""Setting up a workstation: `motionclone install` / `uninstall` and `doctor`. Above the library: may use the client."""
