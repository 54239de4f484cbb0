"""The plain subject (no name, no stores) skips checks that could not fail on it; every
other subject, including falsy stand-ins for the empty values, gets all of them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import codec
from gateway.core.statements import StoreRef, Subject
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import statements_pb2 as pb

USCC = "91330100716105852F"
PLATFORM = "spiffe://zj.alliance/platform/shop"


def test_plain_subjects_keep_their_defaults() -> None:
    for s in (Subject(uscc=USCC), Subject(person_hmac=b"\1" * 32)):
        assert s.name == "" and s.stores == () and type(s.stores) is tuple


def test_an_empty_stores_list_still_becomes_a_tuple() -> None:
    s = Subject(uscc=USCC, stores=[])  # type: ignore[arg-type]
    assert s.stores == () and type(s.stores) is tuple


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"uscc": USCC, "name": None}, r"^subject\.name: must be a string$"),
        ({"uscc": USCC, "name": b""}, r"^subject\.name: must be a string$"),
        ({"person_hmac": b"\0" * 32, "name": None}, r"^subject\.name: must be a string$"),
        ({"uscc": USCC, "stores": [0]}, r"^subject\.stores: must be StoreRef values$"),
    ],
)
def test_falsy_stand_ins_get_the_full_checks(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Subject(**kw)


def test_decoding_with_and_without_stores() -> None:
    plain = codec.subject_from_pb(pb.Subject(uscc=USCC))
    assert plain == Subject(uscc=USCC)
    with_store = pb.Subject(
        uscc=USCC, name="Shop", stores=[pb.StoreRef(platform=PLATFORM, store_id="s1")]
    )
    assert codec.subject_from_pb(with_store) == Subject(
        uscc=USCC, name="Shop", stores=(StoreRef(PLATFORM, "s1"),)
    )
