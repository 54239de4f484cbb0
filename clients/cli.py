"""``alliance``: the member's command line for its regional gateway.

Every command reads the member's profile (``--profile PATH``, default
``$ALLIANCE_PROFILE``). Enum values are written lower-case with dashes
(``key-scrutiny``, ``close-store``). Failures print ``error: …`` and ``hint: …`` on
stderr and exit 2 for bad input or configuration, 1 when the gateway refused or the
log failed verification; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TextIO

from tqdm import tqdm

from clients import (
    __version__,
    audit,
    bulk,
    compliance_cli,
    import_messages,
    importing,
    tabular,
    version,
)
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

_SUBMIT_FILE_HELP = """\
Submit many statements from a list file, one statement per row, streamed to the
gateway: CSV (UTF-8, or GB18030/GBK as Excel and WPS save it on Chinese Windows:
detected, or named with --encoding), an Excel workbook (.xlsx: the first sheet, or
--sheet), or JSON Lines. The format follows the file name or --format.

Columns (English field names or Chinese headers; empty = unset):
  type            listing (default) | status-change | sanction
  listing:        uscc 统一社会信用代码 | resident_id 身份证号, name 主体名称,
                  stores 店铺 ("PLATFORM_ID:STORE_ID ..."), list 列入名单,
                  conduct 失信行为, conduct_other, region 所属地区 (6-digit code or
                  province; default: profile), decision_ref 决定文书号,
                  listed_at 列入日期 (required), deadline, summary 列入原因/摘要,
                  legal_basis 法律依据
  status-change:  listing_id, step, effective_at (required), decision_ref, reason,
                  decided_by
  sanction:       listing_id, measure, measure_other, action (applied|lifted),
                  effective_at (required), store_id, note
Values in English (blacklist, fake-transactions) or Chinese (黑名单, 刷单炒信). Dates
as 2026-10-01, 2026/10/1, 2026年10月1日 or Excel dates (midnight Beijing time), or ISO
8601 times with an offset; fixed times make a second run of the same file report
duplicates instead of new records. The full tables: docs/OPERATIONS.md §10.

A listing dated more than --window-days (30, the gateway's default backdating window)
ago is refused unless the file is an existing list imported with --historical.

--dry-run validates every row as a real run would and submits nothing. The summary
names every rejected row with its line, column and reason, in Chinese when LANG starts
with zh (or --lang); --report PATH also writes them as CSV. A progress display goes to
stderr when it is a terminal. Exit 1 if any row was rejected.

CSV example:
  统一社会信用代码,主体名称,列入名单,失信行为,决定文书号,列入日期,所属地区
  91330100716105852F,杭州某某贸易有限公司,黑名单,刷单炒信,浙市监〔2026〕42号,2026/11/20,浙江省
JSON Lines example:
  {"uscc": "91330100716105852F", "list": "blacklist", "conduct": "counterfeit",
   "decision_ref": "ZJ-AMR-2026-7", "listed_at": "2026-11-20T00:00:00+08:00"}"""


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
    compliance_cli.add_subparsers(sub)
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

    sf = sub.add_parser(
        "submit-file",
        help="bulk submit (or --dry-run check) a list file: CSV, XLSX or JSON Lines",
        description=_SUBMIT_FILE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sf.add_argument("file", type=Path, metavar="FILE")
    sf.add_argument("--format", choices=bulk.FORMATS)
    sf.add_argument(
        "--encoding",
        default="auto",
        choices=tabular.ENCODINGS,
        help="text encoding of a CSV or JSON Lines file (default: auto, UTF-8 else GB18030)",
    )
    sf.add_argument("--sheet", help="the sheet of an .xlsx file to read (default: the first)")
    sf.add_argument("--dry-run", action="store_true", help="validate every row, submit nothing")
    sf.add_argument("--report", type=Path, metavar="PATH", help="write the rejected rows as CSV")
    sf.add_argument(
        "--historical",
        action="store_true",
        help="the file is an existing list: its listings may be older than the window",
    )
    sf.add_argument(
        "--window-days",
        type=int,
        default=importing.DEFAULT_WINDOW.days,
        metavar="N",
        help="refuse listings older than N days without --historical (default: %(default)s)",
    )
    sf.add_argument("--lang", choices=import_messages.LANGUAGES, help="default: from LANG")
    sf.set_defaults(handler=_submit_file)


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

    st = sub.add_parser("step", help="record a lifecycle step of a listing")
    st.add_argument("listing_id", metavar="LISTING_ID")
    st.add_argument("step", choices=[s for s in build.enum_choices(LifecycleStep) if s != "listed"])
    st.add_argument("--decision-ref", default="")
    st.add_argument("--reason", default="")
    st.add_argument("--decided-by", default="")
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


def _submit_file(args: argparse.Namespace) -> int:
    language: import_messages.Language = args.lang or import_messages.user_language()
    if args.window_days < 0:
        raise RecordError("--window-days: must not be negative")
    try:
        options = bulk.ImportOptions(
            fmt=bulk.detect_format(args.file, args.format),
            encoding=args.encoding,
            sheet=args.sheet,
            historical=args.historical,
            window_days=args.window_days,
        )
        if args.dry_run:
            ctx = bulk.row_context(load_profile(args.profile), window_days=args.window_days)
            report = bulk.check_file(args.file, ctx, options)
        else:
            _, client = _client(args)
            with client, _ProgressDisplay(sys.stderr, language) as display:
                report = bulk.submit_file(client, args.file, options, on_progress=display.update)
    except import_messages.ImportFileError as e:
        text, advice = e.text(language)
        print(f"error: {text}\nhint: {advice or e.advice}", file=sys.stderr)
        return EXIT_USAGE
    if args.report is not None:  # first: the file is the record, the screen may be a pipe
        with args.report.open("w", encoding="utf-8-sig", newline="") as out:
            bulk.write_report(report, out, language)
    _print_import(report, language)
    if args.report is not None:
        print(import_messages.Message("report_written", {"path": args.report}).text(language))
    return 0 if report.ok else EXIT_REFUSED


def _print_import(report: bulk.BulkReport, language: import_messages.Language) -> None:
    def say(key: str, **params: object) -> str:
        return import_messages.Message(key, params).text(language)

    if report.dry_run:
        print(say("summary_dry", total=report.total, valid=report.valid, refused=report.refused))
    else:
        print(
            say(
                "summary",
                total=report.total,
                stored=report.stored,
                duplicates=report.duplicates,
                refused=report.refused,
            )
        )
    for r in report.rejected:
        reason = r.message.text(language)
        if r.where():
            print("  " + say("report.entry", line=r.line, column=r.where(), reason=reason))
        else:
            print("  " + say("report.entry_row", line=r.line, reason=reason))
    if report.historical and not importing.HISTORICAL_MARK_SIGNED:
        print(say("historical_unmarked", count=report.historical), file=sys.stderr)


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


class _ProgressDisplay:
    """Rows done of the total, and how many were stored, duplicates and refused.

    Drawn by tqdm on ``out`` when it is a terminal, and not at all otherwise (a log
    file or a pipe gets the summary only).
    """

    def __init__(self, out: TextIO, language: import_messages.Language) -> None:
        self._out = out
        self._words = import_messages.table(language)
        self._bar: tqdm[NoReturn] | None = None

    def __enter__(self) -> _ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, p: bulk.Progress) -> None:
        bar = self._bar
        if bar is None:
            if not self._out.isatty():
                return
            bar = self._bar = tqdm(total=p.total, file=self._out, unit="row", dynamic_ncols=True)
        w = self._words
        bar.set_postfix_str(
            f"{w['progress.stored']} {p.stored}  {w['progress.duplicates']} {p.duplicates}  "
            f"{w['progress.refused']} {p.rejected}",
            refresh=False,
        )
        bar.update(p.done - bar.n)


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
        what = f"{build.enum_text(s.measure)} {build.enum_text(s.action)}"
        return f"sanction {what} on {s.listing_id} by {s.issuer}"
    if isinstance(s, MemberRecord):
        return f"member   {s.member_id} {build.enum_text(s.status)} by {s.issuer}"
    return f"{_type_name(payload_type)} by {s.issuer}"


if __name__ == "__main__":
    sys.exit(main())
