"""``hebi-gateway``: run the gateway, and manage its local accounts.

    hebi-gateway serve                      listen on gateway.host:gateway.port
    hebi-gateway adduser alice              asks for a password (or --password-stdin, --random-password),
                                            and creates alice's root folders (session.roots)
    hebi-gateway users                      list the accounts
    hebi-gateway token create --user alice --scope sessions:read [--scope ...] [--expires-in SECONDS]
                                            a scoped API token, printed once (docs/admin.md)
    hebi-gateway token list [--user alice]  token revoke ID
"""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from aiohttp import web

from hebi_common.config import ConfigError, HebiConfig, load_config
from hebi_common.errors import UserError
from hebi_common.identity import IdentityError, check_username
from hebi_common.logs import setup_logging
from pod_launcher import LauncherError

from .accounts import AccountError, UsersFile, make_root_folders
from .front import FrontError
from .tokens import DEFAULT_LIFETIME, SCOPES, TokenStore, is_admin


def serve_app(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` on host:port with uvloop where available (behind its nginx front, when it has one);
    print the address actually bound."""
    from .app import FRONT
    try:
        import uvloop  # a faster event loop: the proxy's hot path is all event-loop work
        uvloop.install()
    except ImportError:
        pass
    # Bind here so port 0 works: the chosen port is printed for scripts (the demo, the tests) to read.
    # With an nginx front, the front takes the public address and this process listens behind it, on loopback.
    front = app.get(FRONT)
    own_host, own_port = ("127.0.0.1", 0) if front is not None else (host, port)
    sock = socket.socket(socket.AF_INET6 if ":" in own_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((own_host, own_port))
    # Listen before announcing: a client that reads the address may connect before the loop runs,
    # and is then queued in the backlog rather than refused.
    sock.listen(1024)
    bound_host, bound_port = sock.getsockname()[:2]
    if front is not None:
        bound_host, bound_port = host, front.start(host, port, f"127.0.0.1:{bound_port}")
    print(f"hebi-gateway: listening on http://{bound_host}:{bound_port}/", flush=True)
    logging.getLogger("hebi.gateway").info("gateway listening on %s:%s", bound_host, bound_port)
    try:
        web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)
    finally:
        if front is not None:
            front.stop()


def _serve(config, config_path: str | None) -> None:
    from .app import create_app
    setup_logging("gateway", config.logging.level, config.logging.format)
    serve_app(create_app(config, config_path=config_path), config.gateway.host, config.gateway.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hebi-gateway", description="hebi's authenticating gateway")
    parser.add_argument("--config", default=os.environ.get("HEBI_CONFIG"), help="hebi's YAML configuration")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway")
    add = commands.add_parser("adduser", help="add a local account, or set its password")
    add.add_argument("name")
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--random-password", action="store_true", help="make one up and print it")
    add.add_argument("--uid", type=int, help="the account's Unix uid (default: the next free of gateway.uid_range)")
    add.add_argument("--gid", type=int, help="its Unix gid (default: the uid's own)")
    add.add_argument("--home")
    add.add_argument("--groups", help="comma-separated")
    commands.add_parser("users", help="list the local accounts")
    token = commands.add_parser("token", help="scoped API tokens for scripts (/gateway/api/)")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="make a token and print it (once)")
    create.add_argument("--user", required=True)
    create.add_argument("--scope", action="append", required=True, choices=SCOPES)
    create.add_argument("--expires-in", type=int, default=DEFAULT_LIFETIME, help="seconds (default 30 days)")
    create.add_argument("--note", default="")
    listing = token_commands.add_parser("list", help="the tokens (not their secrets)")
    listing.add_argument("--user")
    revoke = token_commands.add_parser("revoke", help="end a token now")
    revoke.add_argument("id")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
        if args.command == "serve":
            _serve(config, args.config)
            return 0
        users = UsersFile(Path(config.gateway.state_dir) / "users.yaml")
        if args.command == "token":
            return _token(config, users, args)
        if args.command == "users":
            print("\n".join(users.names()) or "no accounts")
        elif args.command == "adduser":
            if args.random_password:
                password = secrets.token_urlsafe(12)
            elif args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass(f"password for {args.name}: ")
                if getpass.getpass("again: ") != password:
                    raise AccountError("the passwords differ")
            fields = users.unix_ids(check_username(args.name), args.uid, args.gid, config.gateway.uid_range)
            if args.home is not None:
                fields["home"] = args.home
            if args.groups:
                fields["groups"] = [g.strip() for g in args.groups.split(",") if g.strip()]
            users.set_password(args.name, password, **fields)
            print(f"{args.name}: password {password}" if args.random_password else f"{args.name}: saved")
            done, problems = make_root_folders(config.session.roots, users.get(args.name))
            for line in done:
                print(line)
            for problem in problems:
                print(f"hebi-gateway: warning: {problem}", file=sys.stderr)
    except (ConfigError, AccountError, IdentityError, LauncherError, UserError, FrontError) as err:
        print(f"hebi-gateway: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"hebi-gateway: {err}", file=sys.stderr)
        return 2
    return 0


def _token(config: HebiConfig, users: UsersFile, args: argparse.Namespace) -> int:
    tokens = TokenStore(Path(config.gateway.state_dir) / "tokens.json")
    if args.token_command == "create":
        account = users.get(args.user)
        admin = is_admin(config, args.user, account.groups if account else ())
        secret, made = tokens.create(args.user, list(args.scope), admin=admin, expires_in=args.expires_in, note=args.note)
        print(secret)
        print(f"token {made.id} of {made.user}{' (admin)' if admin else ''}: {' '.join(made.scopes)}, "
              f"expires {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(made.expires))}", file=sys.stderr)
    elif args.token_command == "list":
        for made in tokens.list(check_username(args.user) if args.user else None):
            print(f"{made.id}  {made.user:<16} {','.join(made.scopes):<40} "
                  f"expires {time.strftime('%Y-%m-%d %H:%M', time.gmtime(made.expires))}  {made.note}")
    elif not tokens.revoke(args.id):
        print(f"hebi-gateway: no token {args.id}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
