"""`python -m motionclone.cli`: the command line without the installed `motionclone` script."""

from motionclone.cli.main import main

raise SystemExit(main())
