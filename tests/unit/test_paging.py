"""Page tokens round-trip, and anything a gateway did not issue is refused."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import RecordError
from gateway.service.paging import decode_token, encode_token


def test_round_trip_and_empty_token() -> None:
    assert decode_token("v1", encode_token("v1", 12345)) == 12345
    assert decode_token("c1", "") == -1


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"c1:5").decode(),  # another kind's token
        base64.urlsafe_b64encode(b"v1:-5").decode(),
        base64.urlsafe_b64encode(b"v1:5x").decode(),
        base64.urlsafe_b64encode(f"v1:{2**63}".encode()).decode(),  # past a BIGINT
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(RecordError, match="page_token"):
        decode_token("v1", token)
