"""Errors a user caused, and the boundary every entry point puts around its work.

A :class:`UserError` (a bad config value, an unreadable file, a folder another process trains,
a hub dataset out of reach) reaches the user as one line naming the key, file, row or value,
with exit code 2. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

USER_ERROR_EXIT = 2


class UserError(Exception):
    """Input or state the user can fix; the message is one line that says what and where."""


def print_error(prog: str, err: UserError) -> None:
    print(f"{prog}: error: {err}", file=sys.stderr, flush=True)


def entry_point(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate an entry point's main: a UserError becomes one line on stderr and exit code 2, and
    output cut short by its reader (``... | head``) ends quietly instead of with a BrokenPipeError."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                code = main(*args, **kwargs)
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
                return code
            except UserError as err:
                print_error(prog, err)
                return USER_ERROR_EXIT
            except BrokenPipeError:
                # Python flushes stdout again at exit: point it at /dev/null so that flush is silent.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1

        return run

    return decorate
