"""``alliance``: the member's command line for its regional gateway.

Every command reads the member's profile (``--profile PATH``, default
``$ALLIANCE_PROFILE``). Enum values are written lower-case with dashes
(``key-scrutiny``, ``close-store``). Failures print ``error: …`` and ``hint: …`` on
stderr and exit 2 for bad input or configuration, 1 when the gateway refused or the
log failed verification, 141 when the reader of the output went away
(``alliance listings --json | head``); never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from clients import (
    __version__,
    audit,
    compliance_cli,
    i18n,
    import_cli,
    public_cli,
    reasons,
    version,
)
from clients import statements as build
from clients.client import AllianceClient, ClientError, ListingState, RetryPolicy, SubjectStatus
from clients.i18n import N_, _
from clients.profile import PROFILE_ENV, Profile, load_profile
from gateway.codec import decode_envelope
from gateway.core import dsse
from gateway.core.identifiers import MemberId
from gateway.core.notes import CosignatureSigner
from gateway.core.statements import (
    ConductType,
    ErasureBasis,
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
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a command the signal ended

_DESCRIPTION = N_(
    "The member's command line for its regional alliance gateway.\n"
    "\n"
    "Every command reads the member's profile (--profile PATH, default $ALLIANCE_PROFILE).\n"
    "Enum values are written lower-case with dashes (key-scrutiny, close-store).\n"
    "Messages follow --lang or LANG (zh-CN or en); times are Beijing time, except in\n"
    "JSON output (RFC 3339, UTC).\n"
    "Exit status: 0 done, 1 the gateway refused (or the log failed verification),\n"
    "2 bad input or configuration, 141 the reader of the output left (| head).\n"
    "Before each command the CLI asks the gateway which protocol revision it speaks\n"
    "and warns on stderr when it differs from its own."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        hint = _("see `%(prog)s --help`") % {"prog": self.prog}
        sys.stderr.write(i18n.error_lines(message, hint))
        raise SystemExit(EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so that a reader that left is seen below
        return code
    except BrokenPipeError:
        return _reader_left()


def _main(argv: Sequence[str] | None) -> int:
    try:
        i18n.use(_language(argv))
    except GatewayError as e:
        return _fail(e, EXIT_USAGE)
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


def _reader_left() -> int:
    """The reader of the output went away (``alliance listings --json | head``): stop
    quietly, as a command killed by SIGPIPE would, with its status 141 (128 + 13).

    What is still buffered for stdout can never be written; stdout is pointed at
    /dev/null so that the interpreter's flush at exit does not print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a descriptor (a test's capture)
        pass
    return EXIT_PIPE


def _language(argv: Sequence[str] | None) -> i18n.Code:
    """``--lang`` (anywhere on the line: ``submit-file`` takes it too), else LANG."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--lang")
    known, _rest = early.parse_known_args(argv)
    return i18n.user_locale(known.lang)


def _fail(e: GatewayError, code: int) -> int:
    """``error: …`` and ``hint: …`` on stderr, in the user's language: a refusal by its
    reason code when this CLI knows it, else as the gateway (or the core) worded it."""
    said = reasons.explain(e)
    sys.stderr.write(i18n.error_lines(said.message, said.advice, said.detail))
    return code


# --- the parser ----------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="alliance",
        description=_(_DESCRIPTION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"alliance {__version__} (alliance-client, speaks {version.PROTOCOL})",
    )
    p.add_argument(
        "--lang",
        metavar="zh-CN|en",
        help=_("language of messages (default: from LC_ALL, LC_MESSAGES or LANG)"),
    )
    p.add_argument(
        "--profile",
        type=Path,
        help=_("member profile.toml (default: $%(env)s)") % {"env": PROFILE_ENV},
    )
    p.add_argument("--timeout", type=float, default=10.0, help=_("seconds per call (default 10)"))
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help=_("retries while the gateway is unavailable (default 3)"),
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_list_seller(sub)
    _add_lifecycle(sub)
    _add_erase(sub)
    _add_reads(sub)
    _add_audit(sub)
    import_cli.add_subparser(sub, _client)
    compliance_cli.add_subparsers(sub)
    public_cli.add_subparsers(sub)
    ve = sub.add_parser(
        "version",
        help=_("the protocol this client and the gateway speak (exit 1 when they differ)"),
    )
    ve.set_defaults(handler=_version)
    return p


_Sub = argparse._SubParsersAction  # the type argparse hands out; it has no public name


def _add_list_seller(sub: _Sub[_Parser]) -> None:
    ls = sub.add_parser("list-seller", help=_("list a seller (sign and submit a Listing)"))
    who = ls.add_mutually_exclusive_group(required=True)
    who.add_argument("--uscc", help=_("Unified Social Credit Code of an enterprise"))
    who.add_argument("--resident-id", help=_("resident id number (hashed before it is sent)"))
    ls.add_argument("--list", required=True, choices=build.enum_choices(ListKind), dest="list_kind")
    ls.add_argument("--conduct", required=True, choices=build.enum_choices(ConductType))
    ls.add_argument("--conduct-other", default="", help=_("description when --conduct other"))
    ls.add_argument("--decision-ref", required=True, help=_("the decision the listing rests on"))
    ls.add_argument("--region", help=_("6-digit region code (default: the profile's)"))
    ls.add_argument("--listed-at", help=_("ISO 8601 time or date (default: now)"))
    ls.add_argument("--deadline", help=_("correction deadline (default: 3 months after listing)"))
    ls.add_argument("--summary", default="")
    ls.add_argument("--legal-basis", default="")
    ls.add_argument("--name", default="", help=_("registered name of the enterprise"))
    ls.add_argument("--store", action="append", default=[], metavar="PLATFORM_ID:STORE_ID")
    ls.set_defaults(handler=_list_seller)


def _add_lifecycle(sub: _Sub[_Parser]) -> None:
    cs = sub.add_parser("confirm-sanction", help=_("confirm a measure your platform applied"))
    cs.add_argument("listing_id", metavar="LISTING_ID")
    cs.add_argument("--measure", required=True, choices=build.enum_choices(SanctionMeasure))
    cs.add_argument("--measure-other", default="", help=_("description when --measure other"))
    cs.add_argument("--lift", action="store_true", help=_("confirm the measure was lifted"))
    cs.add_argument("--store-id", default="")
    cs.add_argument("--note", default="")
    cs.add_argument("--effective-at", help=_("ISO 8601 time or date (default: now)"))
    cs.set_defaults(handler=_confirm_sanction)
    na = sub.add_parser(
        "not-applicable",
        help=_(
            "answer that the seller has no account with your platform (ends what you owe "
            "on a listing naming none of your stores)"
        ),
    )
    na.add_argument("listing_id", metavar="LISTING_ID")
    na.add_argument("--note", default="")
    na.add_argument("--effective-at", help=_("ISO 8601 time or date (default: now)"))
    na.set_defaults(handler=_not_applicable)

    st = sub.add_parser("step", help=_("record a lifecycle step of a listing"))
    st.add_argument("listing_id", metavar="LISTING_ID")
    # LISTED is the listing itself; RETIRED only the issuing alliance's gateway signs.
    member_steps = [s for s in build.enum_choices(LifecycleStep) if s not in ("listed", "retired")]
    st.add_argument("step", choices=member_steps)
    st.add_argument("--decision-ref", default="")
    st.add_argument("--reason", default="")
    st.add_argument("--decided-by", default="")
    st.add_argument(
        "--document",
        type=Path,
        help=_(
            "the document the step rests on (the notice served, the signed commitment, "
            "the evidence of a dispute): its SHA-256 goes into the record, never the file"
        ),
    )
    st.add_argument("--effective-at", help=_("ISO 8601 time or date (default: now)"))
    st.set_defaults(handler=_step)


def _add_erase(sub: _Sub[_Parser]) -> None:
    er = sub.add_parser(
        "erase",
        help=_(
            "erase the subject and free text of records at every gateway that holds them "
            "(sign and submit an Erasure); the records stay in the log"
        ),
    )
    er.add_argument("record_ids", nargs="+", metavar="RECORD_ID")
    er.add_argument(
        "--basis",
        required=True,
        choices=build.enum_choices(ErasureBasis),
        help=_(
            "why: purpose-achieved (publication ended), retention-ended, decision (a court "
            "or administrative decision), withdrawn (listed in error)"
        ),
    )
    er.add_argument(
        "--legal-basis",
        required=True,
        help=_("the legal basis in words; stays in the log in the clear: no personal data"),
    )
    er.add_argument("--effective-at", help=_("ISO 8601 time or date (default: now)"))
    er.set_defaults(handler=_erase)


def _add_reads(sub: _Sub[_Parser]) -> None:
    ck = sub.add_parser("check", help=_("are these sellers listed?"))
    ck.add_argument("codes", nargs="*", metavar="CODE", help=_("USCC codes"))
    ck.add_argument(
        "--resident-id", action="append", default=[], help=_("resident id (repeatable)")
    )
    ck.add_argument("--json", action="store_true", help=_("JSON Lines instead of a table"))
    ck.set_defaults(handler=_check)

    li = sub.add_parser("listings", help=_("list listings, with filters"))
    li.add_argument("--list", choices=build.enum_choices(ListKind), dest="list_kind")
    li.add_argument("--conduct", choices=build.enum_choices(ConductType))
    li.add_argument("--region", default="", help=_("2-digit province or 6-digit region code"))
    li.add_argument("--step", choices=build.enum_choices(LifecycleStep))
    li.add_argument("--overdue", action="store_true", help=_("only overdue listings"))
    li.add_argument("--in-force", action="store_true", help=_("only listings in force"))
    li.add_argument("--json", action="store_true", help=_("JSON Lines instead of a table"))
    li.set_defaults(handler=_listings)

    wa = sub.add_parser("watch", help=_("follow the gateway's records as they are appended"))
    wa.add_argument("--from", type=int, default=0, dest="from_index", metavar="N")
    wa.add_argument("--limit", type=int, default=0, metavar="N", help=_("stop after N records"))
    wa.set_defaults(handler=_watch)


def _add_audit(sub: _Sub[_Parser]) -> None:
    au = sub.add_parser("audit", help=_("verify the gateway's log (monitors, and anyone)"))
    asub = au.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    verify = asub.add_parser("verify", help=_("verify the latest checkpoint, store it"))
    verify.set_defaults(handler=_audit_verify)
    prove = asub.add_parser("prove", help=_("prove a record is in the verified log"))
    prove.add_argument("record_id", metavar="RECORD_ID")
    prove.set_defaults(handler=_audit_prove)
    replay = asub.add_parser(
        "replay",
        help=_("rebuild the log, re-verify every record and list the erased entries"),
    )
    replay.add_argument("--json", action="store_true", help=_("one JSON object instead of text"))
    replay.set_defaults(handler=_audit_replay)
    cosign = asub.add_parser("cosign", help=_("verify, then cosign the checkpoint"))
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
    state = _("serving") if check.serving else _("not serving")
    spoken = str(check.gateway) if check.gateway is not None else _("(not stated)")
    print(
        _("client  alliance-client %(version)s, speaks %(protocol)s")
        % {"version": __version__, "protocol": check.client}
    )
    print(
        _("gateway %(address)s: %(state)s, speaks %(protocol)s")
        % {"address": profile.gateway, "state": state, "protocol": spoken}
    )
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
            raise RecordError(_("--name: only for enterprises, never for natural persons"))
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
    _print_submitted(_("listing"), result.record_id, result.log_index, result.duplicate)
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
    _print_submitted(
        _("sanction confirmation"), result.record_id, result.log_index, result.duplicate
    )
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
    _print_submitted(
        _("not-applicable answer"), result.record_id, result.log_index, result.duplicate
    )
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
            _("--document: cannot read %(path)s: %(error)s")
            % {"path": path, "error": e.strerror or e},
            advice=_("give the path of the document the step rests on"),
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
    step = i18n.name(build.parse_enum(LifecycleStep, args.step, field="step"))
    _print_submitted(
        _("step %(step)s") % {"step": step}, result.record_id, result.log_index, result.duplicate
    )
    return 0


def _erase(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    statement = build.erasure(
        profile.member_id,
        args.record_ids,
        build.parse_enum(ErasureBasis, args.basis, field="basis"),
        legal_basis=args.legal_basis,
        effective_at=_time(args.effective_at, "effective_at"),
    )
    with client:
        result = client.submit(statement)
    _print_submitted(_("erasure"), result.record_id, result.log_index, result.duplicate)
    n = len(statement.record_ids)
    print(
        i18n.ngettext(
            "the subject and free text of %(n)d record are erased at every gateway",
            "the subject and free text of %(n)d records are erased at every gateway",
            n,
        )
        % {"n": n}
    )
    return 0


def _print_submitted(what: str, record_id: str, log_index: int | None, duplicate: bool) -> None:
    if duplicate:
        print(_("%(what)s already stored: nothing changed") % {"what": what})
    else:
        print(_("%(what)s stored") % {"what": what})
    print(_("record id: %(id)s") % {"id": record_id})
    print(_("log index: %(index)s") % {"index": log_index})


def _check(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    subjects: list[Subject] = [build.company_subject(code) for code in args.codes]
    labels = list(args.codes)
    if args.resident_id:
        key = profile.hmac_key()
        for rid in args.resident_id:
            subjects.append(build.person_subject(rid, key))
            labels.append(_("resident …%(last4)s") % {"last4": rid[-4:]})
    if not subjects:
        raise RecordError(
            _("check: give USCC codes and/or --resident-id"),
            advice=_("e.g. alliance check 91330100716105852F"),
        )
    with client:
        statuses = client.check(subjects)
    if args.json:
        for label, status in zip(labels, statuses, strict=True):
            print(json.dumps(_status_json(label, status), ensure_ascii=False))
        return 0
    rows = [
        (
            _("SUBJECT"),
            _("STATUS"),
            _("LIST"),
            _("CONDUCT"),
            _("SINCE"),
            _("DEADLINE"),
            _("STEP"),
            _("OVERDUE"),
            _("SANCTIONS"),
        )
    ]
    for label, status in zip(labels, statuses, strict=True):
        verdict = _("listed") if status.listed else _("not listed")
        if not status.listings:
            rows.append((label, verdict, "-", "-", "-", "-", "-", "-", "-"))
        for state in status.listings:
            rows.append(
                (
                    label,
                    verdict,
                    i18n.name(state.listing.list),
                    _conduct(state.listing),
                    i18n.day(state.listing.listed_at),
                    i18n.day(state.correction_deadline),
                    i18n.name(state.step),
                    _("overdue") if state.overdue else _("no"),
                    _sanctions(state, profile) or "-",
                )
            )
    i18n.table(rows, sys.stdout)
    return 0


def _listings(args: argparse.Namespace) -> int:
    _profile, client = _client(args)
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
                _("LISTING ID"),
                _("SUBJECT"),
                _("LIST"),
                _("CONDUCT"),
                _("REGION"),
                _("STEP"),
                _("LISTED"),
                _("DEADLINE"),
                _("FLAGS"),
            )
        ]
        for state in states:
            flags = ",".join(
                f
                for f, on in ((_("in-force"), state.in_force), (_("overdue"), state.overdue))
                if on
            )
            rows.append(
                (
                    state.listing_id,
                    _subject(state.listing.subject),
                    i18n.name(state.listing.list),
                    _conduct(state.listing),
                    i18n.unit_name(state.listing.region_code),
                    i18n.name(state.step),
                    i18n.day(state.listing.listed_at),
                    i18n.day(state.correction_deadline),
                    flags or "-",
                )
            )
    i18n.table(rows, sys.stdout)
    n = len(rows) - 1
    print(i18n.ngettext("%(n)d listing", "%(n)d listings", n) % {"n": n})
    return 0


def _watch(args: argparse.Namespace) -> int:
    _profile, client = _client(args)
    seen = 0
    names: dict[str, str] = {}  # member id -> display name, from the member records seen
    with client:
        for entry in client.watch(args.from_index):
            env = entry.envelope
            summary = _describe(env, names)
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
    if previous is None:
        detail = _("first checkpoint seen")
    else:
        detail = _("consistent with %(size)d") % {"size": previous.size}
    print(
        _("checkpoint %(size)d verified (%(detail)s)")
        % {"size": outcome.checkpoint.size, "detail": detail}
    )


def _audit_prove(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    with client:
        outcome = _verified(profile, client)
        proof = audit.prove(client, outcome.checkpoint, args.record_id)
    print(
        _("record %(record)s is entry %(index)d of verified checkpoint %(size)d")
        % {"record": proof.record_id, "index": proof.leaf_index, "size": proof.tree_size}
    )
    return 0


def _audit_replay(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    with client:
        outcome = _verified(profile, client)
        if not args.json:
            _print_verified(outcome)
        result = audit.replay(
            client,
            outcome.checkpoint,
            profile.log_verifier(),
            trust_domain=profile.member.trust_domain,
        )
    if args.json:
        print(json.dumps(_replay_json(outcome, result), ensure_ascii=False))
        return 0
    kinds = ", ".join(f"{n} {_type_name(t)}" for t, n in sorted(result.by_type.items()))
    print(
        _(
            "replayed %(size)d entries: root matches checkpoint %(size)d; every signature "
            "verified (%(kinds)s; %(signers)d signer(s), %(members)d member(s))"
        )
        % {
            "size": result.tree_size,
            "kinds": kinds or _("no records"),
            "signers": len(result.signers),
            "members": result.members,
        }
    )
    for member in result.trusted_on_first_use:
        print(_("note: peer gateway %(member)s was trusted on first use") % {"member": member})
    n = len(result.erased)
    print(
        i18n.ngettext(
            "%(n)d entry erased (served without its subject and free text; it still verifies)",
            "%(n)d entries erased (served without their subject and free text; they still verify)",
            n,
        )
        % {"n": n}
    )
    for e in result.erased:
        if e.erased_by is None:
            print(
                _(
                    "  entry %(index)d  %(record)s  (no erasure up to this checkpoint names "
                    "it: its origin had erased it)"
                )
                % {"index": e.log_index, "record": e.record_id}
            )
        else:
            print(
                _("  entry %(index)d  %(record)s  erased by %(erasure)s")
                % {"index": e.log_index, "record": e.record_id, "erasure": e.erased_by}
            )
    return 0


def _replay_json(verified: audit.VerifyOutcome, result: audit.ReplayOutcome) -> dict[str, object]:
    previous = verified.previous
    return {
        "checkpoint": {
            "size": verified.checkpoint.size,
            "root": verified.checkpoint.root_hash.hex(),
            "consistent_with": None if previous is None else previous.size,
        },
        "entries": result.tree_size,
        "by_type": dict(sorted(result.by_type.items())),
        "signers": len(result.signers),
        "members": result.members,
        "trusted_on_first_use": result.trusted_on_first_use,
        "erased": {
            "count": len(result.erased),
            "entries": [
                {"log_index": e.log_index, "record_id": e.record_id, "erased_by": e.erased_by}
                for e in result.erased
            ],
        },
    }


def _audit_cosign(args: argparse.Namespace) -> int:
    profile, client = _client(args)
    signer = CosignatureSigner(profile.member_id, profile.signing_key())
    with client:
        outcome = _verified(profile, client)
        _print_verified(outcome)
        audit.cosign(client, outcome, signer)
    print(
        _("cosigned checkpoint %(size)d as %(member)s")
        % {"size": outcome.checkpoint.size, "member": profile.member_id}
    )
    return 0


# --- output --------------------------------------------------------------------------


def _conduct(listing: Listing) -> str:
    name = i18n.name(listing.conduct)
    return f"{name}: {listing.conduct_other}" if listing.conduct_other else name


def _subject(subject: Subject | None) -> str:
    if subject is None:
        return _("(erased)")
    if subject.uscc is not None:
        return subject.uscc
    assert subject.person_hmac is not None
    return _("person:%(digest)s…") % {"digest": subject.person_hmac.hex()[:12]}


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
        measure = s.measure_other if s.measure is SanctionMeasure.OTHER else i18n.name(s.measure)
        if s.action is not SanctionAction.APPLIED:
            measure = _("%(measure)s lifted") % {"measure": measure}
        parts.append(f"{measure} ({_member_name(s.platform, profile)}, {i18n.day(s.effective_at)})")
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


def _describe(env: dsse.Envelope, names: dict[str, str]) -> str:
    """A one-line summary for ``watch`` (display only: signatures are not checked here).
    Members are shown by the display names their member records gave, once seen."""
    try:
        s = decode_envelope(env)
    except GatewayError:
        return _("%(type)s (does not parse)") % {"type": env.payload_type}
    if isinstance(s, MemberRecord) and s.display_name:
        names[s.member_id] = s.display_name
    by = names.get(s.issuer, s.issuer)
    if isinstance(s, Listing):
        kind = f"{i18n.name(s.list)} {i18n.name(s.conduct)}"
        text = _("listing  %(subject)s %(kind)s by %(issuer)s")
        return text % {"subject": _subject(s.subject), "kind": kind, "issuer": by}
    if isinstance(s, StatusChange):
        text = _("step     %(step)s of %(listing)s by %(issuer)s")
        return text % {"step": i18n.name(s.step), "listing": s.listing_id, "issuer": by}
    if isinstance(s, SanctionConfirmation):
        measure = "" if s.measure is None else f"{i18n.name(s.measure)} "
        what = f"{measure}{i18n.name(s.action)}"
        text = _("sanction %(what)s on %(listing)s by %(issuer)s")
        return text % {"what": what, "listing": s.listing_id, "issuer": by}
    if isinstance(s, MemberRecord):
        member = f"{s.member_id} ({s.display_name})" if s.display_name else s.member_id
        text = _("member   %(member)s %(status)s by %(issuer)s")
        return text % {"member": member, "status": i18n.name(s.status), "issuer": by}
    return _("%(type)s by %(issuer)s") % {"type": _type_name(env.payload_type), "issuer": by}


if __name__ == "__main__":
    sys.exit(main())
