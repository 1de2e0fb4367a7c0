"""Prompt text is confidential: it may pass through our frames, but never into a repr, a log or a traceback."""

from __future__ import annotations

import hashlib


class ConfidentialText(str):
    """A str that tokenizers read as usual but whose repr (what tracebacks and assertion messages show) is redacted.

    pytest prints the arguments of every frame in a failure's traceback; a prompt wrapped in this class shows as
    ``<confidential text: 31 characters, sha256 1f2e…>`` there.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.encode("utf-8")).hexdigest()[:12]
        return f"<confidential text: {len(self)} characters, sha256 {digest}…>"


def confidential(text: str | None) -> ConfidentialText | None:
    return None if text is None else ConfidentialText(text)
