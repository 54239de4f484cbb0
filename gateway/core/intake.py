"""Intake rules: what a gateway demands of the records its own members submit.

The statement rules (``gateway.core.statements``) hold for every record everywhere.
These hold where a record enters the federation: at the gateway its member submits it
to (and for what a gateway signs itself). A replicated record was judged by the
gateway that took it in, under that gateway's settings (its backdating window may
differ from ours), and is not judged again: replication checks signatures and
authority only, so one record a peer accepted can never stop a whole replicated batch.

- **Times.** The time at which a submitted statement takes effect (a listing's
  ``listed_at``, a status change's or a confirmation's ``effective_at``) lies in
  ``[now - backdating window, now + clock skew]``. Only a historical import, an
  explicit operation its signed record states, may go further back
  (``historical=True``; no payload type carries that flag yet). The version time of
  what a gateway signs (a member record's ``issued_at``) is at most ``now + clock skew``.
- **Characters.** Text fields carry no character of the Unicode categories Cc
  (controls, C0 and C1), Cf (format: bidi overrides, zero-width characters, BOM), Zl
  and Zp (U+2028, U+2029); free text may hold LF (U+000A) and TAB (U+0009) of these.
- **Personal data.** No text field holds a valid resident identity number; no
  descriptive text field (free text, names, ``*_other``, ``decided_by``) holds a
  mainland mobile number. References (``decision_ref``, ``store_id``) may hold digit
  runs that look like a phone number, so only the resident-ID rule applies to them.
  A ``person_hmac`` must not be plainly something other than HMAC output.

Each rule raises ``RecordError`` naming the field and never echoes personal data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.identifiers import find_mobile_numbers, find_resident_ids, implausible_hmac
from gateway.core.statements import (
    AlliancePolicy,
    GovernmentMeasure,
    LifecycleStep,
    Listing,
    MemberRecord,
    SanctionConfirmation,
    Statement,
    StatusChange,
    Subject,
)
from gateway.errors import RecordError

__all__ = [
    "DEFAULT_BACKDATING_WINDOW",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_INTAKE_RULES",
    "DOCUMENT_STEPS",
    "FORBIDDEN_CATEGORIES",
    "IntakeRules",
    "check_document",
    "check_effective_time",
    "check_issued_at",
    "check_submitted",
    "check_text",
]

DEFAULT_BACKDATING_WINDOW = timedelta(days=30)
DEFAULT_CLOCK_SKEW = timedelta(seconds=300)
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_FREE_TEXT_ALLOWED = frozenset("\n\t")
# Category Cc within ASCII (the statement models refuse these already; the check stands alone).
_ASCII_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_CONTROLS_EXCEPT_BREAKS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Any decimal digits, full-width ones too (what NFKC turns into ASCII digits).
_DIGIT_RUN = re.compile(r"\d{3}")


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """The configured bounds (``backdating_window_days``, ``clock_skew_s``)."""

    backdating_window: timedelta = DEFAULT_BACKDATING_WINDOW
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW

    def __post_init__(self) -> None:
        if self.backdating_window < timedelta(0) or self.clock_skew < timedelta(0):
            raise ValueError("the backdating window and the clock skew must not be negative")


DEFAULT_INTAKE_RULES = IntakeRules()


# --- times ---------------------------------------------------------------------------


def check_effective_time(
    value: datetime, field: str, *, now: datetime, rules: IntakeRules, historical: bool
) -> None:
    """``value`` must lie in ``[now - backdating window, now + clock skew]``; a
    historical import (``historical=True``) has no lower bound."""
    latest = now + rules.clock_skew
    if value > latest:
        raise RecordError(
            f"{field}: {value.isoformat()} is in the future (the gateway's clock reads "
            f"{now.isoformat()}, allowed skew {rules.clock_skew.total_seconds():g} s)",
            advice="state when it took effect, not when it is planned; check your clock",
            reason="time-in-future",
        )
    if historical:
        return
    earliest = now - rules.backdating_window
    if value < earliest:
        raise RecordError(
            f"{field}: {value.isoformat()} is before {earliest.isoformat()}, more than "
            f"{_days(rules.backdating_window)} before the gateway's clock",
            advice="submit records when they take effect; older ones need a historical "
            "import, which the record must state",
            reason="time-too-old",
        )


def check_issued_at(value: datetime, field: str, *, now: datetime, rules: IntakeRules) -> None:
    """A version time (``issued_at``) is at most ``now + clock skew``."""
    if value > now + rules.clock_skew:
        raise RecordError(
            f"{field}: {value.isoformat()} is later than the gateway's clock "
            f"{now.isoformat()} plus the allowed skew",
            advice="issue records at the current time; check the clock",
            reason="time-in-future",
        )


def _days(window: timedelta) -> str:
    return f"{window.days} days" if window.days * 86_400 == window.total_seconds() else str(window)


# --- text ----------------------------------------------------------------------------


def check_text(value: str, field: str, *, multiline: bool, descriptive: bool) -> None:
    """The character and personal-data rules for one text field.

    ``multiline``: free text (LF and TAB allowed); ``descriptive``: prose or a name,
    where a mobile number has no business (references are not descriptive).
    """
    if not value:
        return
    if value.isascii():
        bad = (_ASCII_CONTROLS_EXCEPT_BREAKS if multiline else _ASCII_CONTROLS).search(value)
        if bad is not None:
            raise RecordError(
                f"{field}: character {bad.start() + 1} is U+{ord(bad.group()):04X} (a control "
                "character), which this field may not hold",
                advice="remove control characters; free text may hold LF and TAB only",
            )
    else:
        for position, char in enumerate(value, start=1):
            if unicodedata.category(char) in FORBIDDEN_CATEGORIES and not (
                multiline and char in _FREE_TEXT_ALLOWED
            ):
                raise RecordError(
                    f"{field}: character {position} is U+{ord(char):04X} "
                    f"({unicodedata.name(char, 'unnamed')}, category "
                    f"{unicodedata.category(char)}), which a text field may not hold",
                    advice="remove invisible, bidirectional and line-breaking characters",
                )
    if _DIGIT_RUN.search(value) is None:
        return  # an ID number or a phone number has a run of 3 digits at least
    if next(find_resident_ids(value), None) is not None:
        raise RecordError(
            f"{field}: holds a resident identity number",
            advice="never share a person's ID number: identify a person by person_hmac only",
            reason="personal-data",
        )
    if descriptive and next(find_mobile_numbers(value), None) is not None:
        raise RecordError(
            f"{field}: holds a mobile phone number",
            advice="personal contact data may not be shared in records: remove it",
            reason="personal-data",
        )


def _disclosed_subject(stmt: Listing) -> Subject:
    """A submitted listing's subject: intake sees every record with its disclosures."""
    if stmt.subject is None:
        raise RecordError("listing.subject: a listing is submitted with its subject disclosed")
    return stmt.subject


def _fields(stmt: Statement) -> Iterator[tuple[str, str, bool, bool]]:
    """(field path, value, multiline, descriptive) of every text field a member writes."""
    if isinstance(stmt, Listing):
        subject = _disclosed_subject(stmt)
        yield "listing.subject.name", subject.name, False, True
        for i, store in enumerate(subject.stores):
            yield f"listing.subject.stores[{i}].store_id", store.store_id, False, False
        yield "listing.conduct_other", stmt.conduct_other, False, True
        yield "listing.decision_ref", stmt.decision_ref, False, False
        yield "listing.summary", stmt.summary, True, True
        yield "listing.legal_basis", stmt.legal_basis, True, True
    elif isinstance(stmt, StatusChange):
        yield "status_change.decision_ref", stmt.decision_ref, False, False
        yield "status_change.reason", stmt.reason, True, True
        yield "status_change.decided_by", stmt.decided_by, False, True
    elif isinstance(stmt, SanctionConfirmation):
        yield "sanction_confirmation.measure_other", stmt.measure_other, False, True
        yield "sanction_confirmation.store_id", stmt.store_id, False, False
        yield "sanction_confirmation.note", stmt.note, True, True
    elif isinstance(stmt, MemberRecord):
        yield "member_record.display_name", stmt.display_name, False, True
    elif isinstance(stmt, GovernmentMeasure):
        yield "government_measure.kind_other", stmt.kind_other, False, True
        yield "government_measure.decision_ref", stmt.decision_ref, False, False
        yield "government_measure.note", stmt.note, True, True


# --- documents -----------------------------------------------------------------------

# Steps that rest on a document the entity received or signed (notice §IV): the written
# correction notice and the credit commitment. From protocol revision 3 a member states
# the SHA-256 of the document when it records the step. The rule holds at intake, not
# in the statement model, so steps recorded before revision 3 still read everywhere.
DOCUMENT_STEPS = frozenset({LifecycleStep.NOTICE_SERVED, LifecycleStep.COMMITMENT_SIGNED})


def check_document(stmt: StatusChange) -> None:
    """A NOTICE_SERVED or COMMITMENT_SIGNED step carries its document's SHA-256."""
    if stmt.step in DOCUMENT_STEPS and len(stmt.document_sha256) != 32:
        what = "notice" if stmt.step is LifecycleStep.NOTICE_SERVED else "signed commitment"
        raise RecordError(
            f"status_change.document_sha256: required for {stmt.step.name} (the SHA-256 of "
            f"the {what}, 32 bytes)",
            advice="hash the document you served or received, e.g. `sha256sum notice.pdf`, "
            "and send the 32 bytes",
        )


# --- a whole statement ---------------------------------------------------------------


def check_submitted(
    stmt: Statement, *, now: datetime, rules: IntakeRules, historical: bool = False
) -> None:
    """Every intake rule for a statement a member submits (or the gateway signs)."""
    for field, value, multiline, descriptive in _fields(stmt):
        check_text(value, field, multiline=multiline, descriptive=descriptive)
    if isinstance(stmt, Listing):
        hmac_value = _disclosed_subject(stmt).person_hmac
        if hmac_value is not None:
            reason = implausible_hmac(hmac_value)
            if reason is not None:
                raise RecordError(
                    f"listing.subject.person_hmac: is not HMAC-SHA-256 output: {reason}",
                    advice="send HMAC-SHA-256(alliance key, resident ID number), never the "
                    "number itself (docs/PROTOCOL.md §3)",
                )
        check_effective_time(
            stmt.listed_at, "listing.listed_at", now=now, rules=rules, historical=historical
        )
    elif isinstance(stmt, StatusChange):
        check_effective_time(
            stmt.effective_at,
            "status_change.effective_at",
            now=now,
            rules=rules,
            historical=historical,
        )
        check_document(stmt)
    elif isinstance(stmt, SanctionConfirmation):
        check_effective_time(
            stmt.effective_at,
            "sanction_confirmation.effective_at",
            now=now,
            rules=rules,
            historical=historical,
        )
    elif isinstance(stmt, MemberRecord):
        check_issued_at(stmt.issued_at, "member_record.issued_at", now=now, rules=rules)
    elif isinstance(stmt, GovernmentMeasure):
        check_effective_time(
            stmt.effective_at,
            "government_measure.effective_at",
            now=now,
            rules=rules,
            historical=historical,
        )
    elif isinstance(stmt, AlliancePolicy):
        check_issued_at(stmt.issued_at, "alliance_policy.issued_at", now=now, rules=rules)
