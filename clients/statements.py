"""Builders for the statements a member signs, and the text forms the CLI and files use.

Builders return validated domain statements (``gateway.core.statements``): a bad
credit code, region or missing field raises ``RecordError`` naming the field before
anything is signed. Times default to now (UTC); pass them explicitly when the same
statement must be rebuilt byte for byte (a record's id is the hash of its bytes).

Natural persons: ``person_subject`` turns a resident id number into the alliance's
keyed HMAC on this machine; the plain number never leaves the client.

Text forms: enum values are the lower-case names with dashes (``key-scrutiny``,
``close-store``, ``notice-served``); a store is ``PLATFORM_MEMBER_ID:STORE_ID``; a time
is ISO 8601 with an offset (``2026-10-01T09:30:00+08:00``) or a plain date, taken as
midnight Beijing time (UTC+08:00).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final, TypeVar

from gateway.core.identifiers import person_hmac, validate_uscc
from gateway.core.statements import (
    ConductType,
    Erasure,
    ErasureBasis,
    LifecycleStep,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    StoreRef,
    Subject,
)
from gateway.errors import RecordError

__all__ = [
    "BEIJING",
    "company_subject",
    "enum_choices",
    "enum_text",
    "erasure",
    "new_listing",
    "parse_enum",
    "parse_store",
    "parse_time",
    "person_subject",
    "sanction",
    "status_change",
]

BEIJING: Final = timezone(timedelta(hours=8), "CST")
_SPIFFE: Final = "spiffe://"

_E = TypeVar("_E", bound=enum.Enum)


# --- text forms ----------------------------------------------------------------------


def enum_text(value: enum.Enum) -> str:
    """``SanctionMeasure.CLOSE_STORE`` -> ``close-store``."""
    return value.name.lower().replace("_", "-")


def enum_choices(cls: type[enum.Enum]) -> list[str]:
    return [enum_text(m) for m in cls]


def parse_enum(cls: type[_E], text: str, *, field: str) -> _E:
    """``close-store`` (or ``CLOSE_STORE``) -> ``SanctionMeasure.CLOSE_STORE``."""
    key = text.strip().upper().replace("-", "_")
    member = cls.__members__.get(key)
    if member is None:
        raise RecordError(f"{field}: {text!r} is not one of {', '.join(enum_choices(cls))}")
    return member


def parse_store(text: str, *, field: str = "store") -> StoreRef:
    """``spiffe://zj.alliance.test/platform/shop-a:store-1`` -> a ``StoreRef``."""
    start = len(_SPIFFE) if text.startswith(_SPIFFE) else 0
    colon = text.find(":", start)
    if colon < 0:
        raise RecordError(f"{field}: {text!r} must be PLATFORM_MEMBER_ID:STORE_ID")
    try:
        return StoreRef(platform=text[:colon], store_id=text[colon + 1 :])
    except RecordError as e:
        raise RecordError(f"{field}: {text!r}: {e}") from e


def parse_time(text: str, *, field: str) -> datetime:
    """An ISO 8601 time with an offset, or a date (midnight Beijing time)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=BEIJING).astimezone(UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise RecordError(f"{field}: {text!r} is not an ISO 8601 date or time") from e
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RecordError(
            f"{field}: {text!r} has no UTC offset",
            advice="write the offset, e.g. 2026-10-01T09:30:00+08:00, or give a plain date",
        )
    return parsed.astimezone(UTC)


def now() -> datetime:
    """The time a statement is dated when its command names none."""
    return datetime.now(UTC)


# --- subjects ------------------------------------------------------------------------


def company_subject(uscc: str, *, name: str = "", stores: Iterable[StoreRef] = ()) -> Subject:
    """An enterprise or individual business by its Unified Social Credit Code."""
    return Subject(uscc=validate_uscc(uscc, field="uscc"), name=name, stores=tuple(stores))


def person_subject(
    resident_id: str, hmac_key: bytes, *, stores: Iterable[StoreRef] = ()
) -> Subject:
    """A natural person by the alliance-keyed HMAC of the resident id number.

    The number is validated (GB 11643 check character) and hashed here; only the
    32-byte HMAC goes into the record.
    """
    return Subject(person_hmac=person_hmac(resident_id, hmac_key), stores=tuple(stores))


# --- statements ----------------------------------------------------------------------


def new_listing(
    issuer: str,
    subject: Subject,
    *,
    list_kind: ListKind,
    conduct: ConductType,
    decision_ref: str,
    region_code: str,
    listed_at: datetime | None = None,
    correction_deadline: datetime | None = None,
    conduct_other: str = "",
    summary: str = "",
    legal_basis: str = "",
) -> Listing:
    """Put ``subject`` on a list; the correction deadline defaults to 3 months."""
    return Listing(
        issuer=issuer,
        subject=subject,
        list=list_kind,
        conduct=conduct,
        conduct_other=conduct_other,
        region_code=region_code,
        decision_ref=decision_ref,
        listed_at=listed_at or now(),
        correction_deadline=correction_deadline,
        summary=summary,
        legal_basis=legal_basis,
    )


def status_change(
    issuer: str,
    listing_id: str,
    step: LifecycleStep,
    *,
    effective_at: datetime | None = None,
    decision_ref: str = "",
    reason: str = "",
    decided_by: str = "",
    document_sha256: bytes = b"",
) -> StatusChange:
    """A lifecycle step of a listing (CORRECTED, REMOVED, UPHELD and WITHDRAWN need a
    decision and reason; DISPUTED a reason and the SHA-256 of the evidence document;
    NOTICE_SERVED and COMMITMENT_SIGNED the SHA-256 of their document)."""
    return StatusChange(
        issuer=issuer,
        listing_id=listing_id,
        step=step,
        effective_at=effective_at or now(),
        decision_ref=decision_ref,
        reason=reason,
        decided_by=decided_by,
        document_sha256=document_sha256,
    )


def sanction(
    issuer: str,
    listing_id: str,
    measure: SanctionMeasure | None,
    *,
    action: SanctionAction = SanctionAction.APPLIED,
    measure_other: str = "",
    effective_at: datetime | None = None,
    store_id: str = "",
    note: str = "",
) -> SanctionConfirmation:
    """A platform's confirmation that it applied (or lifted) a measure on a listing, or
    (``measure=None``, ``action=NOT_APPLICABLE``) its answer that the seller has no
    account with it."""
    return SanctionConfirmation(
        issuer=issuer,
        listing_id=listing_id,
        measure=measure,
        measure_other=measure_other,
        action=action,
        effective_at=effective_at or now(),
        store_id=store_id,
        note=note,
    )


def erasure(
    issuer: str,
    record_ids: Iterable[str],
    basis: ErasureBasis,
    *,
    legal_basis: str,
    effective_at: datetime | None = None,
) -> Erasure:
    """Erase the disclosures of redactable records (their subject and free text) at every
    gateway that holds them. Signed by a record's issuer, or by an authority of its
    listing's reporting unit (or of national scope); ``legal_basis`` is kept in the
    clear, so it names the law, never the person."""
    return Erasure(
        issuer=issuer,
        record_ids=tuple(record_ids),
        basis=basis,
        legal_basis=legal_basis,
        effective_at=effective_at or now(),
    )
