"""``nastools store``: copy a result store, or merge stores, safely while another process writes them.

Example::

    nastools store copy results.sqlite backup.sqlite
    nastools store merge machine-a.sqlite machine-b.sqlite --into all.sqlite
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

_COUNTED = ("measurements", "searches")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nastools store",
        description="Copy a result store, or merge stores, through sqlite's backup API: safe while "
        "another process (a search, a notebook) has them open.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    copy = actions.add_parser(
        "copy", help="copy a store to a new file (with the rows still in its -wal); the copy gets a new id"
    )
    copy.add_argument("source", metavar="SRC", help="the store to copy")
    copy.add_argument("destination", metavar="DST", help="the new file (must not exist)")
    merge = actions.add_parser(
        "merge",
        help="add the measurements and searches of stores to another (created if absent); a row or "
        "search already there is not added twice",
    )
    merge.add_argument("sources", metavar="SRC", nargs="+", help="stores to merge")
    merge.add_argument("--into", required=True, metavar="DST", help="the store to merge them into")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nastools store``; a failure ends in one line on stderr (exit status 1).

    Example:
        >>> main(["copy", "absent.sqlite", "copy.sqlite"])
        1
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from nastools.store._connection import StoreError  # after parsing: --help needs none of the store
    from nastools.store._copy import copy_store, merge_stores
    from nastools.store._store import ResultStore

    try:
        if args.action == "copy":
            copy = copy_store(args.source, args.destination)
            with ResultStore(copy, read_only=True) as copied:
                counts = [
                    copied._connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in _COUNTED
                ]
            print(
                f"copied {args.source} to {copy}: {counts[0]} measurements and {counts[1]} searches in one "
                f"file, with its own store id {copied.store_id}"
            )
        else:
            print(merge_stores(args.sources, args.into))
    except (StoreError, OSError) as error:
        print(f"nastools store {args.action}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0
