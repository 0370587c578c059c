"""The script's two ways in, one behaviour: Workspace > Scripts (dialog, or markers) and the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from motionclone_client import ClientError, DaemonClient

from motionclone_resolve.clip_choice import chosen_items
from motionclone_resolve.console import ConsoleReporter
from motionclone_resolve.dialog import Dialog, DialogReporter, user_interface
from motionclone_resolve.edit import Edit, current_edit
from motionclone_resolve.errors import ScriptError
from motionclone_resolve.keyframe_choice import media_pool_stills
from motionclone_resolve.marker_prompts import MARKER_PREFIX
from motionclone_resolve.request import Request, request_from_argv
from motionclone_resolve.resolve_app import external_resolve, menu_resolve
from motionclone_resolve.session import GenerationSession, Reporter

EXIT_OK = 0
EXIT_FAILED = 1
MARKER_MODE_NOTE = (
    "this edition of DaVinci Resolve blocks script dialogs (the free edition does since 19.1), so MotionClone "
    f"works from markers alone: every video clip with a marker whose note is '{MARKER_PREFIX} PROMPT' "
    "(optionally with seed=N and preset=NAME) is sent"
)


def main(argv: Sequence[str] | None = None, resolve: Any = None, bmd: Any = None, menu: bool = False) -> int:
    """Run once; the exit status is non-zero when anything failed. `resolve`/`bmd` are Resolve's globals."""
    console = ConsoleReporter()
    try:
        if menu:
            return run_from_menu(menu_resolve(resolve, bmd), bmd, console)
        request = request_from_argv(argv)
        return run_in_console(resolve or external_resolve(), request, console)
    except ScriptError as error:
        console.error(str(error))
        return EXIT_FAILED


def connected_client(request: Request) -> tuple[DaemonClient, str]:
    """A client whose daemon answered and accepted the token, checked before the project is
    touched, and the model the daemon runs for a job naming none."""
    client = None
    try:
        client = DaemonClient(request.address, request.token)
        default_model = client.info().default_model
    except ClientError as error:
        if client is not None:
            client.close()
        raise ScriptError(str(error)) from None
    return client, default_model


def started_session(
    edit: Edit, items: list[Any], request: Request, client: DaemonClient, default_model: str, reporter: Reporter
) -> GenerationSession:
    session = GenerationSession(edit, request, client, default_model, reporter)
    session.plan(items)
    session.start()
    return session


def run_in_console(resolve: Any, request: Request, console: ConsoleReporter) -> int:
    """Send the clips, print each change, place results as they finish; Ctrl-C cancels the jobs."""
    edit = current_edit(resolve)
    items = chosen_items(edit, request.all_marked)
    client, default_model = connected_client(request)
    with client:
        session = started_session(edit, items, request, client, default_model, console)
        try:
            while not session.poll():
                pass
        except KeyboardInterrupt:
            console.message("cancelling the jobs (Ctrl-C again to leave them running)")
            session.cancel()
            while not session.poll():
                pass
        console.message(session.summary())
    return EXIT_FAILED if session.failures else EXIT_OK


def run_from_menu(resolve: Any, bmd: Any, console: ConsoleReporter) -> int:
    interface = user_interface(resolve, bmd)
    if interface is None:
        console.message(MARKER_MODE_NOTE)
        return run_in_console(resolve, Request(all_marked=True), console)
    dialog = Dialog(*interface, media_pool_stills(resolve.GetProjectManager().GetCurrentProject()))
    reporter = DialogReporter(dialog)
    runs: list[tuple[GenerationSession, DaemonClient]] = []

    def generate(request: Request) -> None:
        edit = current_edit(resolve)
        items = chosen_items(edit, request.all_marked)
        client, default_model = connected_client(request)
        try:
            runs.append((started_session(edit, items, request, client, default_model, reporter), client))
        except ScriptError:
            client.close()
            raise

    def poll() -> bool:
        session, client = runs[-1]
        if not session.poll(timeout=0.0):
            return False
        reporter.message(session.summary())
        client.close()
        return True

    dialog.run(generate, poll, lambda: runs[-1][0].cancel())
    return EXIT_FAILED if any(session.failures for session, _ in runs) else EXIT_OK
