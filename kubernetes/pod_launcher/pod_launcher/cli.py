"""``pod_launcher``: the admin's command for users' sessions.

    pod_launcher list
    pod_launcher start -u alice [--uid 20001 --gid 20001 --home /home/alice]
    pod_launcher status -u alice
    pod_launcher stop -u alice        (or --all)
    pod_launcher logs -u alice [-n 100]

The configuration is the gateway's (``--config`` or HEBI_CONFIG), so the CLI sees the sessions the
gateway started and the gateway uses the ones the CLI started.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from hebi_common.config import ConfigError, load_config
from hebi_common.identity import Identity, IdentityError, check_username

from .base import LauncherError, make_launcher


def _age(started_at: float | None) -> str:
    if not started_at:
        return "-"
    seconds = int(time.time() - started_at)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pod_launcher", description="Start, stop and list users' hebi sessions.")
    parser.add_argument("--config", default=os.environ.get("HEBI_CONFIG"), help="hebi's YAML configuration")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every session, running or failed")
    for name, text in (("start", "start a user's session"), ("status", "a user's session state"),
                       ("stop", "stop a user's session"), ("logs", "the last lines of a session's logs")):
        sub = commands.add_parser(name, help=text)
        if name == "stop":
            who = sub.add_mutually_exclusive_group(required=True)
            who.add_argument("-u", "--user")
            who.add_argument("--all", action="store_true", help="stop every session")
        else:
            sub.add_argument("-u", "--user", required=True)
        if name == "logs":
            sub.add_argument("-n", "--lines", type=int, default=100)
        if name == "start":
            # The account's Unix identity, which container backends run the session as (the gateway
            # passes the account's own; here the admin names it).
            sub.add_argument("--uid", type=int)
            sub.add_argument("--gid", type=int)
            sub.add_argument("--home", default="")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
        launcher = make_launcher(config, args.config)
        if getattr(args, "user", None):
            check_username(args.user)
        if args.command == "list":
            sessions = launcher.list()
            if args.json:
                print(json.dumps([s.public_json() for s in sessions], indent=1))
            elif not sessions:
                print("no sessions")
            else:
                print(f"{'USER':<16} {'STATE':<9} {'AGE':>8}  DETAIL")
                for s in sessions:
                    print(f"{s.user:<16} {s.state:<9} {_age(s.started_at):>8}  {s.detail}")
        elif args.command == "start":
            info = launcher.start(Identity(user=args.user, uid=args.uid, gid=args.gid, home=args.home))
            print(json.dumps(info.public_json()) if args.json else f"{info.user}: {info.state} ({info.url})")
        elif args.command == "status":
            info = launcher.status(args.user)
            print(json.dumps(info.public_json()) if args.json else
                  f"{info.user}: {info.state}" + (f" ({info.detail})" if info.detail else ""))
            return 0 if info.state == "running" else 3
        elif args.command == "stop":
            users = [s.user for s in launcher.list()] if args.all else [args.user]
            for user in users:
                print(f"{user}: {'stopped' if launcher.stop(user) else 'had no session'}")
        elif args.command == "logs":
            print(launcher.logs(args.user, args.lines))
    except (ConfigError, LauncherError, IdentityError) as err:
        print(f"pod_launcher: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
