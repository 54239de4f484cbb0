"""Identifier rejections found by mutation testing (docs/TESTING.md): the message names
the field at fault, so a member correcting a batch knows which column to fix."""

from __future__ import annotations

import pytest

from gateway.core.identifiers import validate_resident_id, validate_trust_domain
from gateway.errors import RecordError


def test_a_resident_id_that_is_not_text_is_refused_by_field() -> None:
    with pytest.raises(RecordError) as caught:
        validate_resident_id(110105194912310021)  # type: ignore[arg-type]
    assert str(caught.value) == "resident_id: must be a string"


def test_an_empty_trust_domain_is_refused_by_field() -> None:
    with pytest.raises(RecordError) as caught:
        validate_trust_domain("")
    assert str(caught.value) == "trust_domain: trust domain must not be empty"
    with pytest.raises(RecordError) as caught:
        validate_trust_domain("", field="peer.trust_domain")
    assert str(caught.value) == "peer.trust_domain: trust domain must not be empty"
