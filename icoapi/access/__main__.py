"""``python -m icoapi.access``: create, list and remove access tokens.

The tokens file is the one the service reads (``ICOAPI_TOKENS_FILE``, default
``<data dir>/tokens.yaml``). A new token is printed once and never stored; the
service reads the file at startup, so restart it after a change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from icoapi.access.tokens import (
    GRANTABLE_ROLES,
    TokenFileError,
    add_token,
    load_tokens,
    remove_token,
)
from icoapi.core.settings import SettingsError, load_settings


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icoapi.access", description=__doc__)
    parser.add_argument("--file", type=Path, help="tokens file (default: the service's)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a token and print it once")
    add.add_argument("name", help="who or what uses the token, e.g. line-3-display")
    add.add_argument("--role", choices=sorted(GRANTABLE_ROLES), required=True)
    commands.add_parser("list", help="list token names and roles")
    remove = commands.add_parser("remove", help="revoke a token by name")
    remove.add_argument("name")
    options = parser.parse_args(argv)
    try:
        path = options.file or load_settings().tokens_file
        if options.command == "add":
            token = add_token(path, options.name, options.role)
            _say(f"Token for '{options.name}' ({options.role}), shown only now:")
            _say(token)
            _say(f"Stored its hash in {path}; restart icoapi to use it.")
        elif options.command == "list":
            for entry in load_tokens(path).entries:
                _say(f"{entry.name}\t{entry.role.label}")
        elif not remove_token(path, options.name):
            sys.stderr.write(f"No token named '{options.name}' in {path}\n")
            return 1
        elif path.exists():
            _say(f"Removed '{options.name}' from {path}; restart icoapi to apply.")
        else:
            _say(
                f"Removed '{options.name}', the last token, and with it {path}: after a "
                "restart access control is off (unless ICOAPI_API_KEY is set)."
            )
    except (TokenFileError, SettingsError) as error:
        sys.stderr.write(f"icoapi.access: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
