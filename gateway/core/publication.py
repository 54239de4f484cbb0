"""What the public feed shows: one rule from a listing's folded state to its publication.

Everything the public service (``gateway.public``) and its feed publish is decided by
``publication()`` here and nowhere else, so the rules of the later due-process and
forgetting work plug in at one place:

- **Identified.** Only a listing identified when signed is published: an authority's
  own listing (``is_identified``, the lifecycle's ``identified_when_signed``). A
  platform's report identified later by an IDENTIFIED step is identified for the due
  process (``gateway.core.lifecycle``) but not published yet: its proof would need the
  IDENTIFIED step and the identifying authority's member record as further leaves
  (docs/PROTOCOL.md §8.1), which the proof format does not have.
- **Subjects.** Enterprises and individual businesses (a Unified Social Credit Code) are
  published; a natural person (a keyed hash of a resident id) never is.
- **Whose.** A gateway publishes the listings its own members issued (the issuer's trust
  domain is the gateway's); a replicated listing is published by its own region.
- **When** (publication periods, issue 18: ``gateway.core.periods``, the issuing
  alliance's ``AlliancePolicy.publication_periods``). Published while in force, until
  the maximum period counted from the identification ends. Once CORRECTED or REMOVED
  the listing leaves the current feed and the change feed shows it as a removal, with
  the removing step's reason, date and deciding body, until its publication ends (the
  later of the closing and the end of the minimum period). From then on, and at once
  when it is WITHDRAWN (void: never published again) or RETIRED (maximum period
  ended), it is ``EXPIRED``: the change feed keeps only a tombstone (record id,
  status, the closing step's kind, date and record id: no name, code or text), so a
  mirror learns to drop it, and nothing else (entry, proof, subject page, name search)
  shows it. Erasure (issue 18 items 4-6) is NOT built: the records stay in the log.

The result carries the published fields with the signed statements they come from, so
anyone can check each field against the statement an authority signed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.core.fold import ListingView, in_force_step
from gateway.core.identifiers import MemberId, reporting_unit
from gateway.core.lifecycle import CLOSING_STEPS as LIFECYCLE_CLOSING_STEPS
from gateway.core.lifecycle import identified_when_signed
from gateway.core.periods import Period, publication_end, publication_period
from gateway.core.statements import LifecycleStep, Listing, StatusChange

__all__ = [
    "CLOSING_STEPS",
    "FIELD_LABELS",
    "PublicStatus",
    "Publication",
    "Removal",
    "entry_fields",
    "is_identified",
    "issued_in",
    "publication",
    "rfc3339",
    "wire_name",
]


# The steps that end a listing (gateway.core.lifecycle): the one that decided the step
# shown is the entry's removal.
CLOSING_STEPS = LIFECYCLE_CLOSING_STEPS


class PublicStatus(enum.Enum):
    IN_FORCE = "in_force"
    REMOVED = "removed"
    EXPIRED = "expired"  # publication ended: a tombstone in the change feed only


# The feed's field names (JSON keys) and the labels credit websites use for them (the
# CSV headers and the page's labels): docs/PROTOCOL.md, "Public feed".
FIELD_LABELS: dict[str, str] = {
    "record_id": "记录编号",
    "status": "状态",
    "name": "企业名称",
    "uscc": "统一社会信用代码",
    "list": "列入名单",
    "conduct": "列入原因",
    "conduct_other": "其他失信行为",
    "listed_at": "列入日期",
    "decision_ref": "列入决定书文号",
    "region_code": "所属地区",
    "authority": "作出决定机关标识",
    "authority_name": "作出决定机关",
    "removal_step": "移出方式",
    "removal_reason": "移出原因",
    "removal_at": "移出日期",
    "removal_decided_by": "作出决定机关(移出)",
    "removal_decision_ref": "移出决定书文号",
    "removal_record_id": "移出记录编号",
}


def wire_name(member: enum.Enum) -> str:
    """An enum member as the feed writes it: ``FAKE_TRANSACTIONS`` -> ``fake-transactions``."""
    return member.name.lower().replace("_", "-")


def issued_in(listing: Listing, trust_domain: str) -> bool:
    """Whether a member of ``trust_domain``'s alliance issued ``listing``."""
    return MemberId.parse(listing.issuer).trust_domain == trust_domain


def is_identified(listing: Listing) -> bool:
    """Whether ``listing`` may be published at all: it was identified when signed (an
    authority issued it: ``gateway.core.lifecycle.identified_when_signed``, the rule the
    due process uses). Platform reports identified later are not published (see above).
    """
    return identified_when_signed(listing)


@dataclass(frozen=True, slots=True)
class Removal:
    """The step that ended the listing's publication (its record id and statement)."""

    record_id: str
    change: StatusChange


@dataclass(frozen=True, slots=True)
class Publication:
    """A listing as the public feed shows it."""

    listing_id: str
    listing: Listing
    status: PublicStatus
    removal: Removal | None

    @property
    def uscc(self) -> str:
        subject = self.listing.subject
        assert subject is not None and subject.uscc is not None  # publication() admits only these
        return subject.uscc

    @property
    def unit(self) -> str:
        return reporting_unit(self.listing.region_code)


def publication(
    view: ListingView,
    *,
    removal: StatusChange | None,
    publisher_trust_domain: str,
    at: datetime,
    period: Period | None = None,
    apply_periods: bool = True,
) -> Publication | None:
    """How ``view`` is published by the gateway of ``publisher_trust_domain`` at ``at``:
    ``None`` when it is not published at all; a removal once it is corrected or removed;
    a tombstone (``EXPIRED``) once its publication ended.

    ``removal`` is the status change that decided ``view.step`` (``view.step_record_id``)
    when that step ends the listing; it must be given then, and only then. ``period``:
    the publication period of the issuing alliance's policy (``None``: the defaults).
    ``apply_periods=False``: as if no period ever ended (a proof verifier, which knows
    neither the policy nor when the feed served the entry, checks the signed fields).
    """
    listing = view.listing
    if listing.subject is None or listing.subject.uscc is None:
        return None  # erased, or a natural person: never published
    if not issued_in(listing, publisher_trust_domain):
        return None  # published by the gateway of the issuer's own region
    if not is_identified(listing):
        return None
    end = publication_end(
        view.lifecycle, period if period is not None else publication_period(listing)
    )
    ended = apply_periods and end is not None and at >= end
    if in_force_step(view.step):
        if removal is not None:
            raise ValueError("a listing in force has no removal")
        status = PublicStatus.EXPIRED if ended else PublicStatus.IN_FORCE
        return Publication(view.listing_id, listing, status, None)
    if removal is None or removal.step is not view.step:
        raise ValueError(f"a {view.step.name} listing needs the status change that decided it")
    if removal.listing_id != view.listing_id:
        raise ValueError("the removal refers to another listing")
    void_or_retired = view.step in (LifecycleStep.WITHDRAWN, LifecycleStep.RETIRED)
    return Publication(
        view.listing_id,
        listing,
        PublicStatus.EXPIRED if ended or void_or_retired else PublicStatus.REMOVED,
        Removal(view.step_record_id, removal),
    )


def rfc3339(value: datetime) -> str:
    """A time as the feed writes it: RFC 3339 in UTC with ``Z``, microseconds only when
    not zero (``2026-10-01T00:00:00Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry_fields(pub: Publication, *, authority_name: str) -> dict[str, str]:
    """The published fields of an entry, each a string (``""`` when absent), keyed as in
    ``FIELD_LABELS``; every one but ``authority_name`` (the issuer's member record's
    display name) comes from the signed listing or the signed removal."""
    listing = pub.listing
    change = pub.removal.change if pub.removal is not None else None
    if pub.status is PublicStatus.EXPIRED:
        # A tombstone: what a mirror needs to drop the entry, nothing about the subject.
        tombstone = dict.fromkeys(FIELD_LABELS, "")
        tombstone.update(
            record_id=pub.listing_id,
            status=pub.status.value,
            removal_step=wire_name(change.step) if change else "",
            removal_at=rfc3339(change.effective_at) if change else "",
            removal_record_id=pub.removal.record_id if pub.removal else "",
        )
        return tombstone
    return {
        "record_id": pub.listing_id,
        "status": pub.status.value,
        "name": listing.subject.name if listing.subject is not None else "",
        "uscc": pub.uscc,
        "list": wire_name(listing.list),
        "conduct": wire_name(listing.conduct),
        "conduct_other": listing.conduct_other,
        "listed_at": rfc3339(listing.listed_at),
        "decision_ref": listing.decision_ref,
        "region_code": listing.region_code,
        "authority": listing.issuer,
        "authority_name": authority_name,
        "removal_step": wire_name(change.step) if change else "",
        "removal_reason": change.reason if change else "",
        "removal_at": rfc3339(change.effective_at) if change else "",
        "removal_decided_by": change.decided_by if change else "",
        "removal_decision_ref": change.decision_ref if change else "",
        "removal_record_id": pub.removal.record_id if pub.removal else "",
    }
