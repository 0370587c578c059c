"""The `motionclone` command line: engine commands in this process, daemon commands through the client."""
