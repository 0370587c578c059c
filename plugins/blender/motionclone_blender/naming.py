"""Where the add-on saves results: `//motionclone/` beside a saved .blend, else the preference's folder.

Beside the .blend keeps a project's results with it (and relative, so the project moves as one);
a never-saved file has no folder of its own, so the user's videos folder is the default there.
File names and their reservation are the client's `result_names`, shared with the other front ends.
"""

from __future__ import annotations

from pathlib import Path

from motionclone_client.result_names import videos_folder

RESULTS_FOLDER = "motionclone"


def default_unsaved_folder() -> Path:
    """The user's videos folder: where results of a never-saved .blend go unless the preferences say otherwise."""
    return videos_folder() / RESULTS_FOLDER
