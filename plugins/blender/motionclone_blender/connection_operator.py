"""Preferences > Test connection: the daemon's version, device, GPU memory and models, or why it cannot answer."""

import bpy
from motionclone_client import ClientError

from .background import run_in_background
from .daemon_calls import describe_server, server_info
from .preferences import connection

HEADLESS_WAIT_SECONDS = 10.0


class MOTIONCLONE_OT_test_connection(bpy.types.Operator):
    """Ask the daemon for its status"""

    bl_idname = "motionclone.test_connection"
    bl_label = "Test Connection"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            daemon = connection(context)
        except ClientError as error:
            self.report({"ERROR"}, f"MotionClone: {error}")
            return {"CANCELLED"}
        self._answer = run_in_background(lambda: server_info(daemon))
        if context.window is None:  # no event loop to wait in (Blender run headless): nothing to freeze either
            self._answer.exception(timeout=HEADLESS_WAIT_SECONDS)
            return self._report_answer()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event) -> set[str]:
        if event.type != "TIMER" or not self._answer.done():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._report_answer()

    def _report_answer(self) -> set[str]:
        try:
            info = self._answer.result()
        except ClientError as error:
            self.report({"ERROR"}, f"MotionClone: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, describe_server(info))
        return {"FINISHED"}
