"""Errors that reach users as one clear line rather than a traceback."""

from __future__ import annotations


class InputError(Exception):
    """Bad input (a file, a flag value): the message names the input and what would be valid. CLI exit code 2."""
