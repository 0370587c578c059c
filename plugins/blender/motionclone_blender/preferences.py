"""The add-on's preferences: which daemon, its token, and where results of unsaved files go."""

from dataclasses import dataclass

import bpy
from motionclone_client.errors import ClientError
from motionclone_client.locations import is_loopback

from .naming import default_unsaved_folder


@dataclass(frozen=True)
class Connection:
    """What a background thread needs to reach the daemon (None: found like the CLI finds it)."""

    address: str | None
    token: str | None


class MotionClonePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: bpy.props.StringProperty(
        name="Daemon address",
        description="HOST:PORT of the MotionClone daemon; blank: the daemon running on this computer",
    )
    token: bpy.props.StringProperty(
        name="Token",
        description="The daemon's token; blank: read from this computer's MotionClone config folder",
        subtype="PASSWORD",
    )
    unsaved_folder: bpy.props.StringProperty(
        name="Results of unsaved files",
        description="Where results go while the .blend has never been saved (saved files: //motionclone/)",
        subtype="DIR_PATH",
        default=str(default_unsaved_folder()),
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "address")
        layout.prop(self, "token")
        layout.operator("motionclone.test_connection", icon="LINKED")
        layout.prop(self, "unsaved_folder")


def preferences(context: bpy.types.Context) -> MotionClonePreferences:
    return context.preferences.addons[__package__].preferences


def connection(context: bpy.types.Context) -> Connection:
    """The daemon to talk to; raises ClientError when Blender forbids reaching it.

    A daemon on another machine is online access, which the user may have switched off in
    Blender (Preferences > System > Network); the local daemon is not.
    """
    prefs = preferences(context)
    address = prefs.address.strip() or None
    if address and not is_loopback(address) and not bpy.app.online_access:
        raise ClientError(
            f"Blender's online access is off, so the daemon at {address} cannot be reached; "
            "allow it in Preferences > System > Network, or run the daemon on this computer"
        )
    return Connection(address, prefs.token.strip() or None)
