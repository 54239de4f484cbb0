"""``alliance``: the member's command line for its regional gateway.

Every command reads the member's profile (``--profile PATH``, default
``$ALLIANCE_PROFILE``). Enum values are written lower-case with dashes
(``key-scrutiny``, ``close-store``). Failures print ``error: …`` and ``hint: …`` on
stderr and exit 2 for bad input or configuration, 1 when the gateway refused or the
log failed verification; never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TextIO

from clients import __version__, audit, compliance_cli, import_cli, public_cli, version
from clients import statements as build
from clients.client import AllianceClient, ClientError, ListingState, RetryPolicy, SubjectStatus
from clients.profile import PROFILE_ENV, Profile, load_profile
from gateway.codec import decode_statement
from gateway.core.identifiers import MemberId
from gateway.core.notes import CosignatureSigner
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberRecord,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
    Subject,
)
from gateway.errors import GatewayError, LogIntegrityError, RecordError

EXIT_REFUSED = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
The member's command line for its regional alliance gateway.

Every command reads the member's profile (--profile PATH, default $ALLIANCE_PROFILE).
Enum values are written lower-case with dashes (key-scrutiny, close-store).
Exit status: 0 done, 1 the gateway refused (or the log failed verification),
2 bad input or configuration. Before each command the CLI asks the gateway which
protocol revision it speaks and warns on stderr when it differs from its own."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message}\nhint: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ClientError as e:
        return _fail(e, EXIT_REFUSED)
    except LogIntegrityError as e:
        return _fail(e, EXIT_REFUSED)
    except GatewayError as e:
        return _fail(e, EXIT_USAGE)
    except KeyboardInterrupt:
        return 130


def _fail(e: GatewayError, code: int) -> int:
    print(f"error: {e}\nhint: {e.advice}", file=sys.stderr)
    return code


# --- the parser ----------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="alliance",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"alliance {__version__} (alliance-client, speaks {version.PROTOCOL})",
    )
    p.add_argument("--profile", type=Path, help=f"member profile.toml (default: ${PROFILE_ENV})")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries while the gateway is unavailable (default 3)",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_list_seller(sub)
    _add_lifecycle(sub)
    _add_reads(sub)
    _add_audit(sub)
    import_cli.add_subparser(sub, _client)
    compliance_cli.add_subparsers(sub)
    public_cli.add_subparsers(sub)
    ve = sub.add_parser(
        "version",
        help="the protocol this client and the gateway speak (exit 1 when they differ)",
    )
    ve.set_defaults(handler=_version)
    return p


_Sub = argparse._SubParsersAction  # the type argparse hands out; it has no public name


def _add_list_seller(sub: _Sub[_Parser]) -> None:
    ls = sub.add_parser("list-seller", help="list a seller (sign and submit a Listing)")
    who = ls.add_mutually_exclusive_group(required=True)
    who.add_argument("--uscc", help="Unified Social Credit Code of an enterprise")
    who.add_argument("--resident-id", help="resident id number (hashed before it is sent)")
    ls.add_argument("--list", required=True, choices=build.enum_choices(ListKind), dest="list_kind")
    ls.add_argument("--conduct", required=True, choices=build.enum_choices(ConductType))
    ls.add_argument("--conduct-other", default="", help="description when --conduct other")
    ls.add_argument("--decision-ref", required=True, help="the decision the listing rests on")
    ls.add_argument("--region", help="6-digit region code (default: the profile's)")
    ls.add_argument("--listed-at", help="ISO 8601 time or date (default: now)")
    ls.add_argument("--deadline", help="correction deadline (default: 3 months after listing)")
    ls.add_argument("--summary", default="")
    ls.add_argument("--legal-basis", default="")
    ls.add_argument("--name", default="", help="registered name of the enterprise")
    ls.add_argument("--store", action="append", default=[], metavar="PLATFORM_ID:STORE_ID")
    ls.set_defaults(handler=_list_seller)


def _add_lifecycle(sub: _Sub[_Parser]) -> None:
    cs = sub.add_parser("confirm-sanction", help="confirm a measure your platform applied")
    cs.add_argument("listing_id", metavar="LISTING_ID")
    cs.add_argument("--measure", required=True, choices=build.enum_choices(SanctionMeasure))
    cs.add_argument("--measure-other", default="", help="description when --measure other")
    cs.add_argument("--lift", action="store_true", help="confirm the measure was lifted")
    cs.add_argument("--store-id", default="")
    cs.add_argument("--note", default="")
    cs.add_argument("--effective-at", help="ISO 8601 time or date (default: now)")
    cs.set_defaults(handler=_confirm_sanction)
    na = sub.add_parser(
        "not-applicable",
        help="answer that the seller has no account with your platform (ends what you owe "
        "on a listing naming none of your stores)",
    )
    na.add_argument("listing_id", metavar="LISTING_ID")
    na.add_argument("--note", default="")
    na.add_argument("--effective-at", help="ISO 8601 time or date (default: now)")
    na.set_defaults(handler=_not_applicable)

    st = sub.add_parser("step", help="record a lifecycle step of a listing")
    st.add_argument("listing_id", metavar="LISTING_ID")
    st.add_argument("step", choices=[s for s in build.enum_choices(LifecycleStep) if s != "listed"])
    st.add_argument("--decision-ref", default="")
    st.add_argument("--reason", default="")
    st.add_argument("--decided-by", default="")
    st.add_argument(
        "--document",
        type=Path,
        help="the document the step rests on (the notice served, the signed commitment, "
        "the evidence of a dispute): its SHA-256 goes into the record, never the file",
    )
    st.add_argument("--effective-at", help="ISO 8601 time or date (default: now)")
    st.set_defaults(handler=_step)


def _add_reads(sub: _Sub[_Parser]) -> None:
    ck = sub.add_parser("check", help="are these sellers listed?")
    ck.add_argument("codes", nargs="*", metavar="CODE", help="USCC codes")
    ck.add_argument("--resident-id", action="append", default=[], help="resident id (repeatable)")
    ck.add_argument("--json", action="store_true", help="JSON Lines instead of a table")
    ck.set_defaults(handler=_check)

    li = sub.add_parser("listings", help="list listings, with filters")
    li.add_argument("--list", choices=build.enum_choices(ListKind), dest="list_kind")
    li.add_argument("--conduct", choices=build.enum_choices(ConductType))
    li.add_argument("--region", default="", help="2-digit province or 6-digit region code")
    li.add_argument("--step", choices=build.enum_choices(LifecycleStep))
    li.add_argument("--overdue", action="store_true", help="only overdue listings")
    li.add_argument("--in-force", action="store_true", help="only listings in force")
    li.add_argument("--json", action="store_true", help="JSON Lines instead of a table")
    li.set_defaults(handler=_listings)

    wa = sub.add_parser("watch", help="follow the gateway's records as they are appended")
    wa.add_argument("--from", type=int, default=0, dest="from_index", metavar="N")
    wa.add_argument("--limit", type=int, default=0, metavar="N", help="stop after N records")
    wa.set_defaults(handler=_watch)


def _add_audit(sub: _Sub[_Parser]) -> None:
    au = sub.add_parser("audit", help="verify the gateway's log (monitors, and anyone)")
    asub = au.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    verify = asub.add_parser("verify", help="verify the latest checkpoint, store it")
    verify.set_defaults(handler=_audit_verify)
    prove = asub.add_parser("prove", help="prove a record is in the verified log")
    prove.add_argument("record_id", metavar="RECORD_ID")
    prove.set_defaults(handler=_audit_prove)
    replay = asub.add_parser("replay", help="rebuild the log and re-verify every record")
    replay.set_defaults(handler=_audit_replay)
    cosign = asub.add_parser("cosign", help="verify, then cosign the checkpoint")
    cosign.set_defaults(handler=_audit_cosign)


def _connect(args: argparse.Namespace) -> tuple[Profile, AllianceClient]:
    profile = load_profile(args.profile)
    retry = RetryPolicy(max_attempts=max(1, args.retries + 1))
    return profile, AllianceClient(profile, timeout_s=args.timeout, retry=retry)


def _client(args: argparse.Namespace) -> tuple[Profile, AllianceClient]:
    """The member's client, after a warning on stderr if the gateway speaks another
    protocol. A gateway that cannot be reached is left to the command, which retries."""
    profile, client = _connect(args)
    try:
        check = client.gateway_version(retry=False)
    except ClientError:
        return profile, client
    text = version.notice(check)
    if text is not None:
        print(text, file=sys.stderr)
    return profile, client


def _time(value: str | None, field: str) -> datetime | None:
    return build.parse_time(value, field=field) if value else None


# --- commands ------------------------------------------------------------------------


def _version(args: argparse.Namespace) -> int:
    profile, client = _connect(args)
    with client:
        check = client.gateway_version()
    state = "serving" if check.serving else "not serving"
    spoken = str(check.gateway) if check.gateway is not None else "(not stated)"
    print(f"client  alliance-client {__version__}, speaks {check.client}")
    print(f"gateway {profile.gateway}: {state}, speaks {spoken}")
    text = version.notice(check)
    if text is None:
        return 0
    print(text, file=sys.stderr)
    return EXIT_REFUSED


def _list_seller(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    stores = [build.parse_store(s) for s in args.store]
    if args.uscc is not None:
        subject = build.company_subject(args.uscc, name=args.name, stores=stores)
    else:
        if args.name:
            raise RecordError("--name: only for enterprises, never for natural persons")
        subject = build.person_subject(args.resident_id, profile.hmac_key(), stores=stores)
    statement = build.new_listing(
        profile.member_id,
        subject,
        list_kind=build.parse_enum(ListKind, args.list_kind, field="list"),
        conduct=build.parse_enum(ConductType, args.conduct, field="conduct"),
        conduct_other=args.conduct_other,
        decision_ref=args.decision_ref,
        region_code=args.region or profile.region_code,
        listed_at=_time(args.listed_at, "listed_at"),
        correction_deadline=_time(args.deadline, "deadline"),
        summary=args.summary,
        legal_basis=args.legal_basis,
    )
    with client:
        result = client.submit(statement)
    _print_submitted("listing", result.record_id, result.log_index, result.duplicate)
    return 0


def _confirm_sanction(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    statement = build.sanction(
        profile.member_id,
        args.listing_id,
        build.parse_enum(SanctionMeasure, args.measure, field="measure"),
        action=SanctionAction.LIFTED if args.lift else SanctionAction.APPLIED,
        measure_other=args.measure_other,
        effective_at=_time(args.effective_at, "effective_at"),
        store_id=args.store_id,
        note=args.note,
    )
    with client:
        result = client.submit(statement)
    _print_submitted("sanction confirmation", result.record_id, result.log_index, result.duplicate)
    return 0


def _not_applicable(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    statement = build.sanction(
        profile.member_id,
        args.listing_id,
        None,
        action=SanctionAction.NOT_APPLICABLE,
        effective_at=_time(args.effective_at, "effective_at"),
        note=args.note,
    )
    with client:
        result = client.submit(statement)
    _print_submitted("not-applicable answer", result.record_id, result.log_index, result.duplicate)
    return 0


def _document_sha256(path: Path | None) -> bytes:
    if path is None:
        return b""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise RecordError(
            f"--document: cannot read {path}: {e.strerror or e}",
            advice="give the path of the document the step rests on",
        ) from None
    return digest.digest()


def _step(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    statement = build.status_change(
        profile.member_id,
        args.listing_id,
        build.parse_enum(LifecycleStep, args.step, field="step"),
        effective_at=_time(args.effective_at, "effective_at"),
        decision_ref=args.decision_ref,
        reason=args.reason,
        decided_by=args.decided_by,
        document_sha256=_document_sha256(args.document),
    )
    with client:
        result = client.submit(statement)
    _print_submitted(f"step {args.step}", result.record_id, result.log_index, result.duplicate)
    return 0


def _print_submitted(what: str, record_id: str, log_index: int | None, duplicate: bool) -> None:
    note = " (already stored: nothing changed)" if duplicate else ""
    print(f"{what} stored{note}\nrecord id: {record_id}\nlog index: {log_index}")


def _check(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    subjects: list[Subject] = [build.company_subject(code) for code in args.codes]
    labels = list(args.codes)
    if args.resident_id:
        key = profile.hmac_key()
        for rid in args.resident_id:
            subjects.append(build.person_subject(rid, key))
            labels.append(f"resident …{rid[-4:]}")
    if not subjects:
        raise RecordError(
            "check: give USCC codes and/or --resident-id",
            advice="e.g. alliance check 91330100716105852F",
        )
    with client:
        statuses = client.check(subjects)
    if args.json:
        for label, status in zip(labels, statuses, strict=True):
            print(json.dumps(_status_json(label, status), ensure_ascii=False))
        return 0
    rows = [
        (
            "SUBJECT",
            "STATUS",
            "LIST",
            "CONDUCT",
            "SINCE",
            "DEADLINE",
            "STEP",
            "OVERDUE",
            "SANCTIONS",
        )
    ]
    for label, status in zip(labels, statuses, strict=True):
        verdict = "listed" if status.listed else "not listed"
        if not status.listings:
            rows.append((label, verdict, "-", "-", "-", "-", "-", "-", "-"))
        for state in status.listings:
            rows.append(
                (
                    label,
                    verdict,
                    build.enum_text(state.listing.list),
                    _conduct(state.listing),
                    _day(state.listing.listed_at),
                    _day(state.correction_deadline),
                    build.enum_text(state.step),
                    "overdue" if state.overdue else "no",
                    _sanctions(state, profile) or "-",
                )
            )
    _table(rows, sys.stdout)
    return 0


def _listings(args: argparse.Namespace) -> int:
    _, client = _client(args)
    with client:
        states = client.list_listings(
            list_kind=build.parse_enum(ListKind, args.list_kind, field="list")
            if args.list_kind
            else None,
            conduct=build.parse_enum(ConductType, args.conduct, field="conduct")
            if args.conduct
            else None,
            region_prefix=args.region,
            step=build.parse_enum(LifecycleStep, args.step, field="step") if args.step else None,
            overdue_only=args.overdue,
            in_force_only=args.in_force,
        )
        if args.json:
            for state in states:
                print(json.dumps(_listing_json(state), ensure_ascii=False))
            return 0
        rows = [
            (
                "LISTING ID",
                "SUBJECT",
                "LIST",
                "CONDUCT",
                "REGION",
                "STEP",
                "LISTED",
                "DEADLINE",
                "FLAGS",
            )
        ]
        for state in states:
            flags = ",".join(
                f for f, on in (("in-force", state.in_force), ("overdue", state.overdue)) if on
            )
            rows.append(
                (
                    state.listing_id,
                    _subject(state.listing.subject),
                    build.enum_text(state.listing.list),
                    _conduct(state.listing),
                    state.listing.region_code,
                    build.enum_text(state.step),
                    _day(state.listing.listed_at),
                    _day(state.correction_deadline),
                    flags or "-",
                )
            )
    _table(rows, sys.stdout)
    print(f"{len(rows) - 1} listing(s)")
    return 0


def _watch(args: argparse.Namespace) -> int:
    _, client = _client(args)
    seen = 0
    with client:
        for entry in client.watch(args.from_index):
            env = entry.envelope
            summary = _describe(env.payload_type, env.payload)
            print(f"{entry.log_index}\t{entry.record_id}\t{summary}", flush=True)
            seen += 1
            if args.limit and seen >= args.limit:
                break
    return 0


def _verified(profile: Profile, client: AllianceClient) -> audit.VerifyOutcome:
    return audit.verify(client, profile.log_verifier(), audit.AuditState(profile.state_dir))


def _audit_verify(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    with client:
        outcome = _verified(profile, client)
    _print_verified(outcome)
    return 0


def _print_verified(outcome: audit.VerifyOutcome) -> None:
    previous = outcome.previous
    detail = "first checkpoint seen" if previous is None else f"consistent with {previous.size}"
    print(f"checkpoint {outcome.checkpoint.size} verified ({detail})")


def _audit_prove(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    with client:
        outcome = _verified(profile, client)
        proof = audit.prove(client, outcome.checkpoint, args.record_id)
    print(
        f"record {proof.record_id} is entry {proof.leaf_index} "
        f"of verified checkpoint {proof.tree_size}"
    )
    return 0


def _audit_replay(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    with client:
        outcome = _verified(profile, client)
        _print_verified(outcome)
        result = audit.replay(
            client,
            outcome.checkpoint,
            profile.log_verifier(),
            trust_domain=profile.member.trust_domain,
        )
    kinds = ", ".join(f"{n} {_type_name(t)}" for t, n in sorted(result.by_type.items()))
    print(
        f"replayed {result.tree_size} entries: root matches checkpoint {result.tree_size}; "
        f"every signature verified ({kinds or 'no records'}; {len(result.signers)} signer(s), "
        f"{result.members} member(s))"
    )
    for member in result.trusted_on_first_use:
        print(f"note: peer gateway {member} was trusted on first use")
    return 0


def _audit_cosign(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    signer = CosignatureSigner(profile.member_id, profile.signing_key())
    with client:
        outcome = _verified(profile, client)
        _print_verified(outcome)
        audit.cosign(client, outcome, signer)
    print(f"cosigned checkpoint {outcome.checkpoint.size} as {profile.member_id}")
    return 0


# --- output --------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _day(value: datetime) -> str:
    return value.astimezone(build.BEIJING).date().isoformat()


def _conduct(listing: Listing) -> str:
    name = build.enum_text(listing.conduct)
    return f"{name}: {listing.conduct_other}" if listing.conduct_other else name


def _subject(subject: Subject) -> str:
    if subject.uscc is not None:
        return subject.uscc
    assert subject.person_hmac is not None
    return f"person:{subject.person_hmac.hex()[:12]}…"


def _member_name(member_id: str, profile: Profile) -> str:
    """Members of the profile's own alliance by name, others in full."""
    try:
        member = MemberId.parse(member_id)
    except GatewayError:
        return member_id
    return member.name if member.trust_domain == profile.member.trust_domain else member_id


def _sanctions(state: ListingState, profile: Profile) -> str:
    parts = []
    for s in sorted(state.sanctions, key=lambda s: (s.effective_at, s.platform, s.measure)):
        measure = (
            s.measure_other if s.measure is SanctionMeasure.OTHER else build.enum_text(s.measure)
        )
        action = "" if s.action is SanctionAction.APPLIED else " lifted"
        parts.append(
            f"{measure}{action} ({_member_name(s.platform, profile)}, {_day(s.effective_at)})"
        )
    return "; ".join(parts)


def _listing_json(state: ListingState) -> dict[str, object]:
    listing = state.listing
    return {
        "listing_id": state.listing_id,
        "subject": _subject(listing.subject),
        "issuer": listing.issuer,
        "list": build.enum_text(listing.list),
        "conduct": build.enum_text(listing.conduct),
        "conduct_other": listing.conduct_other,
        "region": listing.region_code,
        "decision_ref": listing.decision_ref,
        "listed_at": listing.listed_at.isoformat(),
        "deadline": state.correction_deadline.isoformat(),
        "step": build.enum_text(state.step),
        "in_force": state.in_force,
        "overdue": state.overdue,
        "sanctions": [
            {
                "platform": s.platform,
                "measure": build.enum_text(s.measure),
                "measure_other": s.measure_other,
                "action": build.enum_text(s.action),
                "effective_at": s.effective_at.isoformat(),
            }
            for s in state.sanctions
        ],
    }


def _status_json(label: str, status: SubjectStatus) -> dict[str, object]:
    return {
        "subject": label,
        "listed": status.listed,
        "listings": [_listing_json(s) for s in status.listings],
    }


def _type_name(payload_type: str) -> str:
    """``application/vnd.alliance.listing.v1+protobuf`` -> ``listing``."""
    parts = payload_type.split(".")
    return parts[2] if len(parts) == 4 and parts[1] == "alliance" else payload_type


def _describe(payload_type: str, payload: bytes) -> str:
    """A one-line summary for ``watch`` (display only: signatures are not checked here)."""
    try:
        s = decode_statement(payload_type, payload)
    except GatewayError:
        return f"{payload_type} (does not parse)"
    if isinstance(s, Listing):
        kind = f"{build.enum_text(s.list)} {build.enum_text(s.conduct)}"
        return f"listing  {_subject(s.subject)} {kind} by {s.issuer}"
    if isinstance(s, StatusChange):
        return f"step     {build.enum_text(s.step)} of {s.listing_id} by {s.issuer}"
    if isinstance(s, SanctionConfirmation):
        measure = "" if s.measure is None else f"{build.enum_text(s.measure)} "
        what = f"{measure}{build.enum_text(s.action)}"
        return f"sanction {what} on {s.listing_id} by {s.issuer}"
    if isinstance(s, MemberRecord):
        return f"member   {s.member_id} {build.enum_text(s.status)} by {s.issuer}"
    return f"{_type_name(payload_type)} by {s.issuer}"


if __name__ == "__main__":
    sys.exit(main())
