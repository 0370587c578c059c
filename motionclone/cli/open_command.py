"""`motionclone open`: print (and open) a one-time link to the local daemon's web page.

The link is signed with the token file's token (`motionclone_client.web_link`), so only this
machine's user can make one, and it carries no token. It finds the page's address in
endpoint.json, which the running daemon wrote.
"""

from __future__ import annotations

import argparse
import webbrowser

from motionclone_client import locations
from motionclone_client.identity import process_alive
from motionclone_client.web_link import LINK_SECONDS, login_link

from motionclone.errors import ConfigError


def add_open_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("open", help="open the local daemon's web page (prints a one-time link)")
    command.add_argument("--no-browser", action="store_true", help="only print the link")


def run_open(args: argparse.Namespace) -> None:
    endpoint = locations.read_endpoint()
    if not endpoint or not process_alive(int(endpoint.get("pid", 0))):
        raise ConfigError("no daemon is running on this machine: start it with `motionclone-daemon serve`")
    if not endpoint.get("web_port"):
        raise ConfigError("the daemon serves no web page (its setting web: false, or a version without one)")
    token = locations.read_token()
    if token is None:
        raise ConfigError(f"cannot read the daemon's token in {locations.config_dir()}")
    link = login_link(token, endpoint["web_host"], endpoint["web_port"])
    print(link)
    print(f"(works once, for {LINK_SECONDS // 60} minutes)", flush=True)
    if not args.no_browser:
        webbrowser.open(link)
