"""Opaque page tokens: a version tag and the last log index (or position) a page ended at.

Tokens are only ever decoded by the gateway that issued them; anything else — garbage,
another kind's tag, a negative or out-of-range index — is a RecordError.
"""

from __future__ import annotations

import base64
import binascii

from gateway.errors import RecordError

_MAX_LOG_INDEX = 2**63 - 1  # the database's 64-bit column


def encode_token(kind: str, log_index: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{log_index}".encode()).decode()


def decode_token(kind: str, token: str) -> int:
    """The log index in ``token``; -1 (start from the beginning) for an empty token."""
    if not token:
        return -1
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        tag, _, value = text.partition(":")
        if tag != kind or not (value.isascii() and value.isdigit()):
            raise ValueError(text)
        index = int(value)
        if index > _MAX_LOG_INDEX:
            raise ValueError(text)
        return index
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise RecordError("page_token: not a token this gateway issued") from e


def encode_text_token(kind: str, position: str) -> str:
    """A token for a position that is not a log index (printable ASCII, at most 200)."""
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def decode_text_token(kind: str, token: str) -> str:
    """The position in a token of ``encode_text_token``."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode("ascii")
        tag, sep, value = text.partition(":")
        if tag != kind or not sep or not value or len(value) > 200 or not value.isprintable():
            raise ValueError(text)
        return value
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise RecordError("page_token: not a token this gateway issued") from e
