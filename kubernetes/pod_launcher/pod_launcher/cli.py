"""``pod_launcher``: the admin's command for users' sessions.

    pod_launcher list
    pod_launcher start -u alice [--uid 20001 --gid 20001 --home /home/alice]
    pod_launcher status -u alice
    pod_launcher stop -u alice        (or --all)
    pod_launcher logs -u alice [-n 100]
    pod_launcher profiles             (the kinds of session offered; kubernetes)
    pod_launcher start -u alice --uid 20001 --profile gpu
    pod_launcher cull [--idle SECONDS] [--max-age SECONDS] [--dry-run]
                                      (stop idle or old sessions, per the gateway's activity file)

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

from . import culling
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
    commands.add_parser("profiles", help="the kinds of session the launcher offers")
    cull = commands.add_parser("cull", help="stop sessions idle or old, as the gateway's culler does")
    cull.add_argument("--idle", type=float, help="seconds without a proxied request (default: gateway.idle_timeout)")
    cull.add_argument("--max-age", type=float, help="seconds since the start (default: gateway.max_age)")
    cull.add_argument("--dry-run", action="store_true", help="list the sessions that would be stopped")
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
            sub.add_argument("--profile", help="one of pod_launcher profiles (default: the user's last choice)")
    args = parser.parse_args(argv)

    launcher = None
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
        elif args.command == "profiles":
            offered = launcher.profiles()
            if args.json:
                print(json.dumps([p.public_json() for p in offered], indent=1))
            else:
                print("\n".join(f"{p.name:<16} {p.display_name}{' (default)' if p.default else ''}"
                                + (f": {p.description}" if p.description else "") for p in offered)
                      or f"the {launcher.name} launcher offers no profiles")
        elif args.command == "start":
            info = launcher.start(Identity(user=args.user, uid=args.uid, gid=args.gid, home=args.home),
                                  profile=args.profile)
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
        elif args.command == "cull":
            idle = config.gateway.idle_timeout if args.idle is None else args.idle
            max_age = config.gateway.max_age if args.max_age is None else args.max_age
            if idle < 0 or max_age < 0:
                raise LauncherError("--idle and --max-age are seconds, 0 or more (0: that rule is off)")
            culls = culling.cull(launcher, config.gateway.state_dir, idle, max_age, dry_run=args.dry_run)
            if args.json:
                print(json.dumps([{"user": c.user, "reason": c.reason, "seconds": round(c.seconds)} for c in culls]))
            elif not culls:
                print("no session to cull" + ("" if idle or max_age else " (no --idle or --max-age, and none configured)"))
            for c in [] if args.json else culls:
                print(f"{c.user}: {'would be stopped' if args.dry_run else 'stopped'} "
                      f"({'idle' if c.reason == 'idle' else 'age'} {_age(time.time() - c.seconds)})")
        elif args.command == "logs":
            print(launcher.logs(args.user, args.lines))
    except (ConfigError, LauncherError, IdentityError) as err:
        print(f"pod_launcher: {err}", file=sys.stderr)
        return 2
    finally:
        if launcher is not None:
            launcher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
