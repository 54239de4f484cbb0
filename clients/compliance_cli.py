"""``alliance compliance …``: what platforms owe on listings, and the report schedule.

    alliance compliance show LISTING_ID        obligations on one listing
    alliance compliance outstanding [--region 33] [--kind apply|lift] [--json]
    alliance compliance schedule [--month 2026-10]
    alliance compliance owed [--json]          what your platform owes, soonest due first

Wired into ``clients.cli`` with ``add_subparsers(sub)``; each handler takes the parsed
arguments (``--profile``, ``--timeout`` come from the main parser) and returns the exit
status. Errors are ``ClientError`` (the gateway refused, exit 1) or ``GatewayError``
(bad input or profile, exit 2), as in the rest of the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import grpc

from clients import i18n, version
from clients.client import ClientError
from clients.i18n import N_, _
from clients.profile import Profile, load_profile
from gateway.core.statements import GovernmentMeasureKind, LifecycleStep, SanctionMeasure
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import compliance_pb2 as co
from gateway.pb.alliance.v1 import compliance_pb2_grpc
from gateway.pb.alliance.v1 import statements_pb2 as st

__all__ = ["ComplianceClient", "add_subparsers"]

_KINDS = {"apply": co.OBLIGATION_KIND_APPLY, "lift": co.OBLIGATION_KIND_LIFT}
_PAGE = 500
# Times people read are Beijing time (UTC+08:00, no daylight saving); JSON keeps UTC.


def _dashed(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix).lower().replace("_", "-")


def _kind(value: int) -> str:
    return _dashed(co.ObligationKind.Name(value), "OBLIGATION_KIND_")  # type: ignore[arg-type]


def _state(value: int) -> str:
    return _dashed(co.ObligationState.Name(value), "OBLIGATION_STATE_")  # type: ignore[arg-type]


def _step(value: int) -> str:
    return _dashed(st.LifecycleStep.Name(value), "LIFECYCLE_STEP_")  # type: ignore[arg-type]


def _measure(m: co.MeasureRef) -> str:
    name = _dashed(st.SanctionMeasure.Name(m.measure), "SANCTION_MEASURE_")
    return f"{name}:{m.measure_other}" if m.measure_other else name


# What people read: obligation kinds and states (the CLI's words), steps and measures
# by their official names (gateway/core/names.toml) in Chinese.
_KIND_TEXT = {
    co.OBLIGATION_KIND_APPLY: N_("apply"),
    co.OBLIGATION_KIND_LIFT: N_("lift"),
}
_STATE_TEXT = {
    co.OBLIGATION_STATE_SATISFIED: N_("satisfied"),
    co.OBLIGATION_STATE_PENDING: N_("pending"),
    co.OBLIGATION_STATE_OUTSTANDING: N_("outstanding"),
    co.OBLIGATION_STATE_NOT_APPLICABLE: N_("not applicable"),
}


def _kind_text(value: int) -> str:
    text = _KIND_TEXT.get(value)  # type: ignore[call-overload]
    return _(text) if text is not None else _kind(value)


def _state_text(value: int) -> str:
    text = _STATE_TEXT.get(value)  # type: ignore[call-overload]
    return _(text) if text is not None else _state(value)


def _step_text(value: int) -> str:
    try:
        return i18n.name(LifecycleStep(value))
    except ValueError:
        return _step(value)


def _measure_text(m: co.MeasureRef) -> str:
    try:
        name = i18n.name(SanctionMeasure(m.measure))
    except ValueError:
        name = _dashed(st.SanctionMeasure.Name(m.measure), "SANCTION_MEASURE_")
    return f"{name}:{m.measure_other}" if m.measure_other else name


def _at(ts: Any) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def _time(ts: Any, has: bool = True) -> str | None:
    """RFC 3339 in UTC, for JSON (machines)."""
    if not has:
        return None
    return _at(ts).isoformat()


def _moment(ts: Any) -> str:
    """Beijing time with its offset, for people."""
    return i18n.moment(_at(ts))


def _government_kind(m: co.GovernmentMeasureRef) -> str:
    try:
        name = i18n.name(GovernmentMeasureKind(m.kind))
    except ValueError:
        name = _dashed(st.GovernmentMeasureKind.Name(m.kind), "GOVERNMENT_MEASURE_KIND_")
    return f"{name}:{m.kind_other}" if m.kind_other else name


def _satisfying_text(value: int) -> str:
    try:
        return i18n.name(SanctionMeasure(value))
    except ValueError:
        return _measure_name(value)


def _rfc3339(ts: Any) -> str:
    """RFC 3339 in UTC with a Z, to the second or finer: 2026-09-08T00:00:00Z."""
    return ts.ToJsonString()  # type: ignore[no-any-return]


def _measure_name(value: int) -> str:
    return _dashed(st.SanctionMeasure.Name(value), "SANCTION_MEASURE_")  # type: ignore[arg-type]


class ComplianceClient:
    """The ``alliance.v1.Compliance`` service over the member's mTLS channel."""

    def __init__(self, profile: Profile, *, timeout_s: float = 10.0) -> None:
        ca, cert, key = profile.tls_files()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        options: list[tuple[str, int | str]] = []
        if profile.server_name is not None:
            options.append(("grpc.ssl_target_name_override", profile.server_name))
        self._address = profile.gateway
        self._timeout_s = timeout_s
        self._channel = grpc.secure_channel(profile.gateway, credentials, options)
        self._stub = compliance_pb2_grpc.ComplianceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def gateway_version(self) -> version.VersionCheck:
        """One health check: is the gateway serving, and which protocol does it speak?"""
        try:
            return version.ask_gateway(self._channel, timeout_s=self._timeout_s)
        except grpc.RpcError as e:
            raise self._error(e) from e

    def __enter__(self) -> ComplianceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, e: grpc.RpcError) -> ClientError:
        code = e.code()
        details = e.details() or code.name.lower()
        if code is grpc.StatusCode.UNAVAILABLE:
            return ClientError(
                code,
                f"cannot reach the gateway at {self._address}: {details}",
                advice="check the gateway address in your profile and that it is running",
            )
        message, _sep, hint = details.partition(" (hint: ")
        return ClientError(code, message, advice=hint.rstrip(")") or None)

    def listing(self, listing_id: str) -> co.ListingCompliance:
        try:
            reply: co.ListingCompliance = self._stub.GetCompliance(
                co.GetComplianceRequest(listing_id=listing_id), timeout=self._timeout_s
            )
        except grpc.RpcError as e:
            raise self._error(e) from e
        return reply

    def outstanding(
        self, *, region_prefix: str = "", kind: int = 0
    ) -> Iterator[co.ListingCompliance]:
        token = ""
        while True:
            try:
                page: co.ListOutstandingResponse = self._stub.ListOutstanding(
                    co.ListOutstandingRequest(
                        region_prefix=region_prefix,
                        kind=kind,  # type: ignore[arg-type]
                        page_size=_PAGE,
                        page_token=token,
                    ),
                    timeout=self._timeout_s,
                )
            except grpc.RpcError as e:
                raise self._error(e) from e
            yield from page.listings
            token = page.next_page_token
            if not token:
                return

    def owed(self) -> Iterator[co.OwedObligation]:
        """What the calling platform owes, soonest due first (every page)."""
        token = ""
        while True:
            try:
                page: co.ListOwedResponse = self._stub.ListOwed(
                    co.ListOwedRequest(page_size=_PAGE, page_token=token), timeout=self._timeout_s
                )
            except grpc.RpcError as e:
                raise self._error(e) from e
            yield from page.owed
            token = page.next_page_token
            if not token:
                return

    def schedule(self, month: str = "") -> co.ReportSchedule:
        try:
            reply: co.ReportSchedule = self._stub.GetReportSchedule(
                co.GetReportScheduleRequest(month=month), timeout=self._timeout_s
            )
        except grpc.RpcError as e:
            raise self._error(e) from e
        return reply


# --- the commands --------------------------------------------------------------------


def add_subparsers(sub: Any) -> None:
    """Add ``compliance`` with ``show``, ``outstanding``, ``owed`` and ``schedule``."""
    p = sub.add_parser("compliance", help=_("sanctions owed on listings, and the report schedule"))
    csub = p.add_subparsers(dest="compliance_command", required=True)
    show = csub.add_parser("show", help=_("what platforms owe on one listing"))
    show.add_argument("listing_id")
    show.add_argument("--json", action="store_true", help=_("print JSON instead of a table"))
    show.set_defaults(handler=show_listing)
    out = csub.add_parser("outstanding", help=_("listings with sanctions or lifts overdue"))
    out.add_argument("--region", default="", help=_("2-digit reporting unit or region prefix"))
    out.add_argument("--kind", choices=sorted(_KINDS), help=_("only sanctions or only lifts"))
    out.add_argument("--json", action="store_true", help=_("print JSON Lines instead of a table"))
    out.set_defaults(handler=list_outstanding)
    owed = csub.add_parser("owed", help=_("what your platform owes, soonest due first"))
    owed.add_argument(
        "--json", action="store_true", help=_("print JSON Lines (times in RFC 3339 UTC)")
    )
    owed.set_defaults(handler=list_owed)
    sched = csub.add_parser("schedule", help=_("when the monthly report is due"))
    sched.add_argument("--month", default="", help=_("YYYY-MM (default: the next one due)"))
    sched.set_defaults(handler=show_schedule)


def _open(args: argparse.Namespace) -> ComplianceClient:
    """The client, after a warning on stderr if the gateway speaks another protocol."""
    client = ComplianceClient(load_profile(args.profile), timeout_s=getattr(args, "timeout", 10.0))
    try:
        check = client.gateway_version()
    except ClientError:
        return client
    text = version.notice(check)
    if text is not None:
        print(text, file=sys.stderr)
    return client


def listing_json(c: co.ListingCompliance) -> dict[str, Any]:
    return {
        "listing_id": c.listing_id,
        "region_code": c.region_code,
        "step": _step(c.step),
        "correction_deadline": _time(c.correction_deadline),
        "in_force": c.in_force,
        "overdue": c.overdue,
        "escalated_at": _time(c.escalated_at, c.HasField("escalated_at")),
        "closed_at": _time(c.closed_at, c.HasField("closed_at")),
        "platforms_from_stores": c.platforms_from_stores,
        "notice_due_at": _rfc3339(c.notice_due_at) if c.HasField("notice_due_at") else None,
        "notice_late": c.notice_late,
        "steps": [
            {
                "step": _step(s.step),
                "effective_at": _rfc3339(s.effective_at),
                "issuer": s.issuer,
                "record_id": s.record_id,
                "decision_ref": s.decision_ref,
                "document_sha256": s.document_sha256.hex(),
            }
            for s in c.steps
        ],
        "government_measures": [
            {
                "kind": _government_kind(m),
                "effective_at": _rfc3339(m.effective_at),
                "issuer": m.issuer,
                "record_id": m.record_id,
                "decision_ref": m.decision_ref,
                "document_sha256": m.document_sha256.hex(),
            }
            for m in c.government_measures
        ],
        "obligations": [
            {
                "platform": o.platform,
                "kind": _kind(o.kind),
                "state": _state(o.state),
                "measures": [_measure(m) for m in o.measures],
                "due_at": _time(o.due_at),
                "satisfying": [_measure_name(m) for m in o.satisfying],
                "may_answer_not_applicable": o.may_answer_not_applicable,
            }
            for o in c.obligations
        ],
    }


def _measures(o: co.PlatformObligation) -> str:
    return ", ".join(_measure_text(m) for m in o.measures) or "-"


def _obligation_rows(c: co.ListingCompliance) -> list[list[str]]:
    return [
        [o.platform, _kind_text(o.kind), _state_text(o.state), _moment(o.due_at), _measures(o)]
        for o in c.obligations
    ]


def show_listing(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _open(args) as client:
        c = client.listing(args.listing_id)
    if args.json:
        out.write(json.dumps(listing_json(c), ensure_ascii=False, indent=2) + "\n")
        return 0
    state = _("in force") if c.in_force else _("closed")
    if c.overdue:
        state = _("%(state)s, overdue") % {"state": state}
    text = _("listing %(id)s (%(region)s): %(step)s, %(state)s, deadline %(deadline)s")
    values = {
        "id": c.listing_id,
        "region": i18n.unit_name(c.region_code),
        "step": _step_text(c.step),
        "state": state,
        "deadline": i18n.day(_at(c.correction_deadline)),
    }
    out.write(text % values + "\n")
    if c.HasField("notice_due_at"):
        text = _("correction notice due %(due)s")
        if c.notice_late:
            text = _("correction notice due %(due)s, LATE")
        out.write(text % {"due": _moment(c.notice_due_at)} + "\n")
    for s in c.steps:
        line = _("  step %(step)s %(at)s by %(issuer)s") % {
            "step": _step_text(s.step),
            "at": _moment(s.effective_at),
            "issuer": s.issuer,
        }
        if s.document_sha256:
            line += _(", document sha256 %(hash)s") % {"hash": s.document_sha256.hex()}
        out.write(line + "\n")
    for m in c.government_measures:
        line = _("  government measure %(kind)s %(at)s by %(issuer)s (%(ref)s)") % {
            "kind": _government_kind(m),
            "at": _moment(m.effective_at),
            "issuer": m.issuer,
            "ref": m.decision_ref,
        }
        if m.document_sha256:
            line += _(", document sha256 %(hash)s") % {"hash": m.document_sha256.hex()}
        out.write(line + "\n")
    if not c.obligations:
        out.write(_("no platform owes anything on this listing") + "\n")
        return 0
    header = [_("platform"), _("kind"), _("state"), _("due (Beijing time)"), _("measures")]
    i18n.table([header, *_obligation_rows(c)], out)
    return 0


def list_outstanding(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    kind = _KINDS[args.kind] if args.kind else 0
    header = [_("listing"), _("region"), _("platform"), _("kind"), _("due (Beijing time)")]
    rows: list[list[str]] = [[*header, _("measures")]]
    with _open(args) as client:
        for c in client.outstanding(region_prefix=args.region, kind=kind):
            if args.json:
                out.write(json.dumps(listing_json(c), ensure_ascii=False) + "\n")
                continue
            for o in c.obligations:
                if o.state != co.OBLIGATION_STATE_OUTSTANDING or (kind and o.kind != kind):
                    continue
                rows.append(
                    [
                        c.listing_id[:16] + "…",
                        i18n.unit_name(c.region_code),
                        o.platform,
                        _kind_text(o.kind),
                        _moment(o.due_at),
                        _measures(o),
                    ]
                )
    if not args.json:
        if len(rows) == 1:
            out.write(_("nothing outstanding") + "\n")
        else:
            i18n.table(rows, out)
    return 0


def owed_json(item: co.OwedObligation) -> dict[str, Any]:
    o = item.obligation
    return {
        "listing_id": item.listing_id,
        "region_code": item.region_code,
        "list": _dashed(st.ListKind.Name(item.list), "LIST_KIND_"),
        "conduct": _dashed(st.ConductType.Name(item.conduct), "CONDUCT_TYPE_"),
        "kind": _kind(o.kind),
        "state": _state(o.state),
        "due_at": _rfc3339(o.due_at),
        "measures": [_measure(m) for m in o.measures],
        "satisfying": [_measure_name(m) for m in o.satisfying],
        "may_answer_not_applicable": o.may_answer_not_applicable,
    }


def list_owed(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    header = [_("due (Beijing time)"), _("state"), _("kind"), _("listing"), _("region")]
    rows: list[list[str]] = [[*header, _("to do")]]
    with _open(args) as client:
        for item in client.owed():
            if args.json:
                out.write(json.dumps(owed_json(item), ensure_ascii=False) + "\n")
                continue
            o = item.obligation
            if o.kind == co.OBLIGATION_KIND_LIFT:
                todo = _("lift %(measures)s") % {"measures": _measures(o)}
            else:
                names = ", ".join(_satisfying_text(m) for m in o.satisfying)
                todo = _("apply one of %(measures)s") % {"measures": names}
                if o.may_answer_not_applicable:
                    todo = _("%(todo)s (or answer not-applicable)") % {"todo": todo}
            rows.append(
                [
                    _moment(o.due_at),
                    _state_text(o.state),
                    _kind_text(o.kind),
                    item.listing_id,
                    i18n.unit_name(item.region_code),
                    todo,
                ]
            )
    if not args.json:
        if len(rows) == 1:
            out.write(_("your platform owes nothing") + "\n")
        else:
            i18n.table(rows, out)
    return 0


def show_schedule(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.month and (len(args.month) != 7 or args.month[4] != "-"):
        raise RecordError(_("--month: %(month)r must be YYYY-MM") % {"month": args.month})
    with _open(args) as client:
        s = client.schedule(args.month)
    text = _("report %(month)s: due %(date)s (late from %(late)s)")
    out.write(text % {"month": s.month, "date": s.due_date, "late": _moment(s.due_by)} + "\n")
    if not s.reports:
        out.write(_("no report signed yet for this month") + "\n")
    for r in s.reports:
        scope = i18n.unit_name(r.unit) if r.unit else _("all units")
        text = _("  signed: record %(id)s at log index %(index)d (%(scope)s, checkpoint %(size)d)")
        values = {
            "id": r.record_id,
            "index": r.log_index,
            "scope": scope,
            "size": r.checkpoint_size,
        }
        out.write(text % values + "\n")
    return 0
