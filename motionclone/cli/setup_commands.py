"""`motionclone install | uninstall | doctor | models`: setting up a workstation, checking it, fetching models.

Registered here and imported lazily, so none of them loads torch unless it needs it (doctor does,
to report the torch build).
"""

from __future__ import annotations

import argparse

SETUP_COMMANDS = ("install", "uninstall", "doctor", "models")


def add_setup_commands(commands: argparse._SubParsersAction) -> None:
    from motionclone.workstation.install.commands import add_arguments

    install = commands.add_parser("install", help="install the daemon service and the editor plugins")
    uninstall = commands.add_parser("uninstall", help="remove everything `install` created")
    add_arguments(install, uninstall)
    doctor = commands.add_parser("doctor", help="check this workstation and say how to fix what is wrong")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    models = commands.add_parser("models", help="download or list the models")
    actions = models.add_subparsers(dest="models_command", required=True)
    pull = actions.add_parser("pull", help="download a model (default: the official base, its VAE, the adapter)")
    pull.add_argument("model", nargs="?", help="hub id of a diffusers model")
    pull.add_argument("--adapter", help="hub id of an AnimateDiff motion adapter to pull as well")
    actions.add_parser("list", help="the models in the cache, their sizes, and which the daemon uses")


def run_setup_command(args: argparse.Namespace) -> int:
    """Run one of SETUP_COMMANDS; the exit status (doctor's says whether generation can run)."""
    if args.command == "install":
        from motionclone.workstation.install.commands import install

        install(args)
    elif args.command == "uninstall":
        from motionclone.workstation.install.commands import uninstall

        uninstall(args)
    elif args.command == "doctor":
        from motionclone.workstation.doctor import run_doctor

        return run_doctor(as_json=args.json)
    else:
        _models(args)
    return 0


def _models(args: argparse.Namespace) -> None:
    """`motionclone models list|pull`: what the HF cache holds of the defaults, or fetch them."""
    from motionclone.config.settings import PAIRED_VAES
    from motionclone.models.store import default_models, list_models, pull

    if args.models_command == "list":
        list_models()
        return
    repos = [args.model] if args.model else default_models()
    if args.model and args.model in PAIRED_VAES:
        repos.append(PAIRED_VAES[args.model])
    if args.adapter:
        repos.append(args.adapter)
    for repo in repos:
        print(pull(repo))
