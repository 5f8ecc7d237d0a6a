"""``camstream hash-password`` and ``camstream token create|list|revoke``: the command line's helpers for signing in."""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..auth.state import TOKENS_FILE
from ..auth.tokens import PEER_CAMERA, Token, TokenStore
from ..auth.users import hash_password
from ..config.layers import gather
from ..config.plan import make_plan
from .parser import Parser, fail

MIN_PASSWORD = 8


def hash_password_command(argv: Sequence[str]) -> int:
    """Print a password hash for ``--user NAME:HASH`` or a config file's ``password_hash``."""
    parser = Parser(prog="camstream hash-password",
                    description="Make the hash of a password for --user NAME:HASH[:ROLE[:CAMERAS]] or "
                    "[users.NAME] password_hash. Asks twice on a terminal; else reads one line from stdin.")
    parser.parse_args(argv)
    try:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                return fail("the two passwords differ")
        else:
            password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)  # the prompt's line was left open
        return fail("no password given; nothing was made")
    if len(password) < MIN_PASSWORD:
        return fail(f"a password needs at least {MIN_PASSWORD} characters")
    print(hash_password(password))
    return 0


def token_command(argv: Sequence[str]) -> int:
    """Make, list or revoke the read-only tokens of the server whose settings are given."""
    server = Parser(add_help=False)
    server.add_argument("--config", metavar="FILE", help="the server's config file")
    server.add_argument("--storage", metavar="DIR", help="the server's data folder (default: its storage)")
    parser = Parser(prog="camstream token", description="Read-only tokens: for embedding one camera (?token=), "
                    "or, with --peer, for a hub that shows every camera of this box.")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    create = actions.add_parser("create", parents=[server], help="make a token for a camera (or, with --peer, for a "
                                "hub); it is shown this once")
    create.add_argument("camera", nargs="?", help="the camera it opens (not with --peer)")
    create.add_argument("--peer", action="store_true",
                        help="a peer token: a hub's credential, reading every camera, its streams and events")
    create.add_argument("--label", default="", help="what it is for (a dashboard's name)")
    actions.add_parser("list", parents=[server], help="the tokens there are (never the tokens themselves)")
    revoke = actions.add_parser("revoke", parents=[server], help="revoke a token by its id")
    revoke.add_argument("id")
    args = parser.parse_args(argv)
    given = {key: value for key, value in (("CONFIG", args.config), ("STORAGE", args.storage)) if value}
    quiet_store_log()
    try:
        plan = make_plan(gather(given))
        store = TokenStore(Path(plan.storage) / TOKENS_FILE)
        if args.action == "create":
            if args.peer == (args.camera is not None):
                return fail("name a camera, or give --peer (a token for a hub), not both" if args.peer
                            else "name the camera the token opens, or give --peer for a hub's token")
            if not args.peer and args.camera not in plan.cameras:
                return fail(f"no camera named {args.camera!r} (there are: {', '.join(plan.cameras)})")
            token, secret = store.create(PEER_CAMERA if args.peer else args.camera, args.label)
            if store.damaged_as is not None:
                print(f"the tokens file was damaged: set aside as {store.damaged_as.name}", file=sys.stderr)
            print(made(token, secret))
        elif args.action == "list":
            tokens = store.all()
            if store.damaged_as is not None:
                return fail(f"the tokens file {store.path.absolute()} was damaged: set aside as "
                            f"{store.damaged_as.name}; there are no tokens now (make new ones)")
            for token in tokens:
                print(f"{token.id}  {token.camera}  {token.label}")  # a peer token's camera: *
            if not tokens:
                # Say where: a --storage or --config other than the server's finds none, and must not look fine.
                found = "no tokens in" if store.path.exists() else "no tokens file at"
                print(f"{found} {store.path.absolute()} (the server's --storage, or its --config, says where "
                      "its tokens are)", file=sys.stderr)
        elif store.revoke(args.id) is None:
            return fail(f"no token {args.id!r}")
        else:
            print(f"revoked token {args.id}")
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    return 0


def made(token: Token, secret: str) -> str:
    """What ``token create`` prints: the token, once, and where it goes."""
    if token.peer:
        return (f"peer token {token.id} (every camera, read only; shown once, keep it):\n{secret}\n"
                f"on the hub: --peer NAME=http://THIS-BOX:PORT/?token={secret}\n"
                f"   or:      [peers.NAME] url = \"http://THIS-BOX:PORT\" and token = \"{secret}\"")
    return (f"token {token.id} for camera {token.camera} (shown once, keep it):\n{secret}\n"
            f"stream:   /video_feed/{token.camera}?token={secret}\n"
            f"snapshot: /snapshot/{token.camera}.jpg?token={secret}")


def quiet_store_log() -> None:
    """What the token store logs for the server (a damaged file set aside) is said here by the command
    itself, in one line: not again by Python's last-resort handler."""
    logging.getLogger("camstream.auth").addHandler(logging.NullHandler())


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"hash-password": hash_password_command, "token": token_command}
