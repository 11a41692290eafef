"""``python -m contacts_http.auth.keygen``: make an API key, or the settings entry of one.

- ``new [--workspace NAME] [SCOPE ...]``: prints a new random key on the first line and its
  ``AUTH_API_KEY_HASHES`` entry (``<sha256hex>[@<workspace>]=<scopes>``) on the second. Scopes
  default to a workspace client's (``contacts:read``, ``contacts:write``, ``contacts:import``);
  the workspace to ``default``.
- ``entry [--workspace NAME] [SCOPE ...]``: reads a key from standard input (one line) and
  prints its entry.

Give the key to the client and only the entry to the service: the key is not stored there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from contacts_domain.workspaces import DEFAULT_WORKSPACE, is_workspace
from contacts_http.auth import scopes as scope_names
from contacts_http.auth.api_keys import hash_api_key, new_api_key
from contacts_http.auth.settings import format_api_key_hashes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command (``argv`` without the program name); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"new", "entry"}:
        print(__doc__, file=sys.stderr)
        return 2
    workspace = DEFAULT_WORKSPACE
    if len(args) > 2 and args[1] == "--workspace":
        if not is_workspace(args[2]):
            print("--workspace: 2 to 63 characters of a-z, 0-9 and '-'", file=sys.stderr)
            return 2
        workspace = args[2]
        del args[1:3]
    scopes = frozenset(args[1:]) or scope_names.ALL
    unknown = scopes - scope_names.ALL - {scope_names.ADMIN}
    if unknown:
        print(f"unknown scope: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args[0] == "new":
        key = new_api_key()
        print(key)
    else:
        key = sys.stdin.readline().strip()
        if not key:
            print("no key on standard input", file=sys.stderr)
            return 2
    print(format_api_key_hashes({hash_api_key(key): scopes}, workspace))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
