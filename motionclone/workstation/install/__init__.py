"""`motionclone install | uninstall`: the daemon as a per-user service and the editor plugins, undoably.

Every file, folder and service the installer creates is recorded in a manifest, and uninstall
removes exactly those. Modules: `layout` (where things go, per platform), `manifest` (what was
created), `actions` (doing or, with --dry-run, only saying), `service`, `blender`, `resolve`,
`plugin_builds` (the plugins' build scripts in the source checkout), `commands` (the two commands).
"""
