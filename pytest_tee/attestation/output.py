"""Printing command output so that ``pytest-tee evidence FILE | head -1`` ends quietly."""

from __future__ import annotations

import os
import sys


def print_quietly(text: str) -> None:
    """Print and flush; a reader that went away (BrokenPipeError) is not an error worth a traceback."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would try to flush stdout again at exit and complain: point it at /dev/null (as the docs advise).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
