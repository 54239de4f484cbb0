"""What the public feed shows: one rule from a listing's folded state to its publication.

Everything the public service (``gateway.public``) and its feed publish is decided by
``publication()`` here and nowhere else, so the rules of the later due-process and
forgetting work plug in at one place:

- **Identified.** Only an identified listing is published. An authority's own listing
  is identified when signed (``identified_when_signed``). A platform's report is
  identified by an IDENTIFIED step (``Identification``: the earliest by
  ``(effective_at, record_id)``, the one ``gateway.core.lifecycle`` counts from). The
  law-facing fields of an identified report name the identification (列入日期 its
  ``effective_at``, 列入决定书文号 its ``decision_ref``, 作出决定机关 its signer); the
  platform's report shows in the ``reported_*`` fields.
- **Subjects.** Enterprises and individual businesses (a Unified Social Credit Code) are
  published; a natural person (a keyed hash of a resident id) never is.
- **Whose** (``publisher_domain``). The deciding authority's alliance publishes: an
  authority's listing is published by the gateway of its issuer's trust domain (a
  replicated listing by its own region); a platform's report by the gateway of the
  trust domain of the authority that signed its identification, whatever the
  platform's domain (a Zhejiang platform's report of a Guangdong seller, identified by
  the Guangdong authority, is published by the Guangdong gateway, on the deciding
  authority's credit website, and not by Zhejiang's). The publishing gateway signed that
  authority's member record with its log key; when the platform is of another alliance,
  the proof adds that alliance's gateway record, held in the publishing log, which
  vouches for the platform's record (docs/PROTOCOL.md §8.4).
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
  shows it.
- **Erased.** A listing whose subject disclosure was erased has no subject left: it is
  never published (the records stay in the log with their commitments).

The result carries the published fields with the signed statements they come from, so
anyone can check each field against the statement an authority signed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.core.fold import ListingView, in_force_step
from gateway.core.identifiers import MemberId, Role, reporting_unit
from gateway.core.lifecycle import CLOSING_STEPS as LIFECYCLE_CLOSING_STEPS
from gateway.core.lifecycle import identified_when_signed
from gateway.core.periods import Period, publication_end, publication_period
from gateway.core.statements import LifecycleStep, Listing, StatusChange

__all__ = [
    "CLOSING_STEPS",
    "FIELD_LABELS",
    "Identification",
    "PublicStatus",
    "Publication",
    "Removal",
    "entry_fields",
    "issued_in",
    "may_publish",
    "publication",
    "publisher_domain",
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
    # A platform's report (identified by an authority, docs/PROTOCOL.md §8.1): the
    # platform and its report; "" for an authority's own listing.
    "reported_by": "报送平台标识",
    "reported_at": "报送日期",
    "report_ref": "报送编号",
    "identification_record_id": "认定记录编号",
}


def wire_name(member: enum.Enum) -> str:
    """An enum member as the feed writes it: ``FAKE_TRANSACTIONS`` -> ``fake-transactions``."""
    return member.name.lower().replace("_", "-")


def issued_in(listing: Listing, trust_domain: str) -> bool:
    """Whether a member of ``trust_domain``'s alliance issued ``listing``."""
    return MemberId.parse(listing.issuer).trust_domain == trust_domain


@dataclass(frozen=True, slots=True)
class Removal:
    """The step that ended the listing's publication (its record id and statement)."""

    record_id: str
    change: StatusChange


@dataclass(frozen=True, slots=True)
class Identification:
    """The IDENTIFIED step that made a platform's report a listing (its record id and
    statement)."""

    record_id: str
    change: StatusChange


def may_publish(listing: Listing, trust_domain: str) -> bool:
    """Whether ``trust_domain``'s gateway may ever publish ``listing``: an authority's
    listing of its own alliance, or a platform's report of any alliance (an authority of
    ``trust_domain`` may identify it). A listing for which this is false never is."""
    return not identified_when_signed(listing) or issued_in(listing, trust_domain)


def publisher_domain(listing: Listing, identification: Identification | None) -> str | None:
    """The trust domain whose gateway publishes ``listing``: the deciding authority's
    (the issuer's for an authority's listing, the identifying authority's for a
    platform's report); ``None`` for a report not identified."""
    if identified_when_signed(listing):
        return MemberId.parse(listing.issuer).trust_domain
    if identification is None:
        return None
    return MemberId.parse(identification.change.issuer).trust_domain


@dataclass(frozen=True, slots=True)
class Publication:
    """A listing as the public feed shows it."""

    listing_id: str
    listing: Listing
    status: PublicStatus
    removal: Removal | None
    identification: Identification | None = None

    @property
    def authority(self) -> str:
        """The deciding authority's member id: the identifying one of a platform's report."""
        if self.identification is not None:
            return self.identification.change.issuer
        return self.listing.issuer

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
    identification: Identification | None = None,
    publisher_trust_domain: str,
    at: datetime,
    period: Period | None = None,
    apply_periods: bool = True,
) -> Publication | None:
    """How ``view`` is published by the gateway of ``publisher_trust_domain`` at ``at``:
    ``None`` when it is not published at all; a removal once it is corrected or removed;
    a tombstone (``EXPIRED``) once its publication ended.

    ``removal`` is the status change that decided ``view.step`` (``view.step_record_id``)
    when that step ends the listing; it must be given then, and only then.
    ``identification``: for a platform's report, its IDENTIFIED step that
    ``view.lifecycle.identified_at`` counts from (none: the report is not identified);
    never for an authority's listing. ``period``:
    the publication period of the issuing alliance's policy (``None``: the defaults).
    ``apply_periods=False``: as if no period ever ended (a proof verifier, which knows
    neither the policy nor when the feed served the entry, checks the signed fields).
    """
    listing = view.listing
    if listing.subject is None or listing.subject.uscc is None:
        return None  # erased, or a natural person: never published
    if identified_when_signed(listing):
        if identification is not None:
            raise ValueError("an authority's listing is identified when signed")
    elif identification is None:
        return None  # a platform's report no authority identified
    else:
        _check_identification(view, identification)
    if publisher_domain(listing, identification) != publisher_trust_domain:
        return None  # published by the gateway of the deciding authority's alliance
    end = publication_end(
        view.lifecycle, period if period is not None else publication_period(listing)
    )
    ended = apply_periods and end is not None and at >= end
    if in_force_step(view.step):
        if removal is not None:
            raise ValueError("a listing in force has no removal")
        status = PublicStatus.EXPIRED if ended else PublicStatus.IN_FORCE
        return Publication(view.listing_id, listing, status, None, identification)
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
        identification,
    )


def _check_identification(view: ListingView, identification: Identification) -> None:
    change = identification.change
    if change.step is not LifecycleStep.IDENTIFIED or change.listing_id != view.listing_id:
        raise ValueError("the identification is not an IDENTIFIED step of this listing")
    if view.lifecycle.identified_at != change.effective_at:
        raise ValueError("the identification is not the one the listing is identified by")
    if MemberId.parse(change.issuer).role is not Role.AUTHORITY:
        raise ValueError(f"{change.issuer} is no authority: it cannot identify a report")


def rfc3339(value: datetime) -> str:
    """A time as the feed writes it: RFC 3339 in UTC with ``Z``, microseconds only when
    not zero (``2026-10-01T00:00:00Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry_fields(pub: Publication, *, authority_name: str) -> dict[str, str]:
    """The published fields of an entry, each a string (``""`` when absent), keyed as in
    ``FIELD_LABELS``; every one but ``authority_name`` (the deciding authority's member
    record's display name) comes from the signed listing, the signed identification
    (a platform's report) or the signed removal."""
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
    # The listing decision: the identification of a platform's report (its date,
    # reference and signer), else the authority's listing itself.
    ident = pub.identification
    return {
        "record_id": pub.listing_id,
        "status": pub.status.value,
        "name": listing.subject.name if listing.subject is not None else "",
        "uscc": pub.uscc,
        "list": wire_name(listing.list),
        "conduct": wire_name(listing.conduct),
        "conduct_other": listing.conduct_other,
        "listed_at": rfc3339(ident.change.effective_at if ident else listing.listed_at),
        "decision_ref": ident.change.decision_ref if ident else listing.decision_ref,
        "region_code": listing.region_code,
        "authority": pub.authority,
        "authority_name": authority_name,
        "removal_step": wire_name(change.step) if change else "",
        "removal_reason": change.reason if change else "",
        "removal_at": rfc3339(change.effective_at) if change else "",
        "removal_decided_by": change.decided_by if change else "",
        "removal_decision_ref": change.decision_ref if change else "",
        "removal_record_id": pub.removal.record_id if pub.removal else "",
        "reported_by": listing.issuer if ident else "",
        "reported_at": rfc3339(listing.listed_at) if ident else "",
        "report_ref": listing.decision_ref if ident else "",
        "identification_record_id": ident.record_id if ident else "",
    }
