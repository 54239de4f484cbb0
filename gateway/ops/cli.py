"""``alliance-gateway``: the operator's command line.

Errors print one line and a hint, and exit 2; nothing prints a traceback at users.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from certs import cli as certs_cli
from certs.pki import generate_signing_key
from gateway.core.crypto import load_signing_key, load_verifying_key
from gateway.core.logcheck import describe
from gateway.core.notes import NoteSigner
from gateway.core.statements import MemberStatus
from gateway.errors import GatewayError, RecordError
from gateway.ops.app import Core, Gateway, settle_heap
from gateway.ops.calendar_cli import add_subparsers as add_calendar_subparsers
from gateway.ops.config import load_config
from gateway.ops.logs import setup_logging
from gateway.ops.policy_file import describe_policy, load_policy_file
from gateway.ops.report_cli import add_subparsers as add_report_subparsers
from gateway.service.integrity import check_log
from gateway.storage import SqlStore, check_schema, make_engine, migrate
from gateway.storage.integrity import IntegrityStore

logger = logging.getLogger(__name__)

_POSSESSION_HELP = (
    "the member's proof that it holds the key (base64), printed by "
    "`alliance-gateway certs possession --key … --member-id …` on the member's side"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if getattr(args, "certs_handler", None) is not None:
        return certs_cli.run(args)
    try:
        result: int = args.handler(args)
        return result
    except GatewayError as e:
        print(f"error: {e}\nhint: {e.advice}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alliance-gateway", description=__doc__)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, required=True)
    serve.set_defaults(handler=_serve)

    mig = sub.add_parser("migrate", help="apply database migrations (back up first)")
    mig.add_argument("--config", type=Path, required=True)
    mig.set_defaults(handler=_migrate)

    _add_members(sub)
    _add_policy(sub)

    peers = sub.add_parser("peers", help="federation with peer gateways")
    psub = peers.add_subparsers(dest="peers_command", required=True)
    pstatus = psub.add_parser("status", help="replication state per peer, from the database")
    pstatus.add_argument("--config", type=Path, required=True)
    pstatus.set_defaults(handler=_peers_status)

    chk = sub.add_parser(
        "check-log",
        help="check the stored log offline: every record, leaf hash and node (exit 1 on damage)",
    )
    chk.add_argument("--config", type=Path, required=True)
    chk.add_argument(
        "--record",
        action="store_true",
        help="replace the damaged ranges the gateway answers DATA_LOSS for with this "
        "check's findings (after a restore, a clean check clears them)",
    )
    chk.set_defaults(handler=_check_log)

    key = sub.add_parser("signing-key", help="create the gateway's Ed25519 log/record key")
    key.add_argument("--out", type=Path, required=True)
    key.set_defaults(handler=_signing_key)

    vkey = sub.add_parser("log-key", help="print the log's C2SP verifier key (give it to monitors)")
    vkey.add_argument("--config", type=Path, required=True)
    vkey.set_defaults(handler=_log_key)

    add_report_subparsers(sub)
    add_calendar_subparsers(sub)
    certs_cli.add_subparsers(sub)
    return p


def _add_members(sub: Any) -> None:
    members = sub.add_parser("members", help="register and manage this region's members")
    msub = members.add_subparsers(dest="members_command", required=True)
    add = msub.add_parser("add", help="register a member and its record-signing key")
    add.add_argument("--config", type=Path, required=True)
    add.add_argument("--member-id", required=True, help="spiffe://<trust-domain>/<role>/<name>")
    add.add_argument("--region", required=True, help="6-digit region code")
    add.add_argument("--public-key", type=Path, required=True, help="Ed25519 key (PEM)")
    add.add_argument("--possession", required=True, help=_POSSESSION_HELP)
    add.add_argument("--display-name", default="")
    add.add_argument(
        "--national",
        action="store_true",
        help="an authority that speaks for the whole country (default: its reporting unit)",
    )
    add.set_defaults(handler=_members_add)
    for name, status in (("suspend", MemberStatus.SUSPENDED), ("activate", MemberStatus.ACTIVE)):
        cmd = msub.add_parser(name, help=f"{name} a member")
        cmd.add_argument("--config", type=Path, required=True)
        cmd.add_argument("--member-id", required=True)
        cmd.set_defaults(handler=_members_status, status=status)
    rot = msub.add_parser(
        "rotate-key", help="add a new signing key; old keys end after --overlap-hours"
    )
    rot.add_argument("--config", type=Path, required=True)
    rot.add_argument("--member-id", required=True)
    rot.add_argument("--public-key", type=Path, required=True)
    rot.add_argument("--possession", required=True, help=_POSSESSION_HELP)
    rot.add_argument("--overlap-hours", type=float, default=24.0)
    rot.set_defaults(handler=_members_rotate)
    ls = msub.add_parser("list", help="show registered members")
    ls.add_argument("--config", type=Path, required=True)
    ls.set_defaults(handler=_members_list)


def _add_policy(sub: Any) -> None:
    policy = sub.add_parser("policy", help="this alliance's signed policy (due process)")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    put = psub.add_parser("set", help="sign a policy from a TOML file and append it")
    put.add_argument("--config", type=Path, required=True)
    put.add_argument("file", type=Path, help="the policy file (docs/OPERATIONS.md)")
    put.set_defaults(handler=_policy_set)
    show = psub.add_parser("show", help="the policy in force for this or another alliance")
    show.add_argument("--config", type=Path, required=True)
    show.add_argument(
        "--trust-domain", default="", help="another alliance's trust domain (default: ours)"
    )
    show.set_defaults(handler=_policy_show)


def _policy_set(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.file)
    core = _with_core(args)
    try:
        result, signed = core.policy_admin.set(policy)
    finally:
        core.close()
    print(
        f"policy of {signed.trust_domain} signed (record {result.record_id}, "
        f"log index {result.log_index})"
    )
    for line in describe_policy(signed):
        print(f"  {line}")
    return 0


def _policy_show(args: argparse.Namespace) -> int:
    core = _with_core(args)
    try:
        domain = args.trust_domain or core.config.trust_domain
        for line in describe_policy(core.policies.current(domain)):
            print(line)
    finally:
        core.close()
    return 0


def _log_key(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    signer = NoteSigner(config.log_origin, load_signing_key(config.signing_key_file))
    print(signer.verifier().vkey)
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    gateway = Gateway(config).start()
    settle_heap()
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: shutting down (grace %ss)", signum, config.shutdown_grace_s)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        f"gateway {config.member_id} listening on {config.listen_address.rpartition(':')[0]}:"
        f"{gateway.port}, metrics on {config.metrics_address}",
        flush=True,
    )
    # Signal handlers run in the main thread, and only when it runs Python code: a
    # SIGTERM the kernel hands to another thread would wait behind an untimed wait
    # forever. Waking up every half second bounds that.
    while not done.wait(timeout=0.5):
        pass
    gateway.stop()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    engine = make_engine(config.database_url)
    try:
        print(f"schema at revision {migrate(engine)}")
    finally:
        engine.dispose()
    return 0


def _with_core(args: argparse.Namespace) -> Core:
    return Core(load_config(args.config))


def _possession(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(
            "--possession: not base64", advice=f"pass the proof as printed: {_POSSESSION_HELP}"
        ) from None


def _members_add(args: argparse.Namespace) -> int:
    possession = _possession(args.possession)
    core = _with_core(args)
    try:
        key = load_verifying_key(args.public_key)
        result = core.members.add(
            args.member_id,
            args.region,
            key.raw,
            possession=possession,
            display_name=args.display_name,
            national=args.national,
        )
    finally:
        core.close()
    print(f"registered {args.member_id} (record {result.record_id}, log index {result.log_index})")
    return 0


def _members_status(args: argparse.Namespace) -> int:
    core = _with_core(args)
    try:
        result = core.members.set_status(args.member_id, args.status)
    finally:
        core.close()
    print(f"{args.member_id} is now {args.status.name.lower()} (log index {result.log_index})")
    return 0


def _members_rotate(args: argparse.Namespace) -> int:
    if args.overlap_hours < 0:
        raise RecordError("--overlap-hours: must not be negative")
    possession = _possession(args.possession)
    core = _with_core(args)
    try:
        key = load_verifying_key(args.public_key)
        result = core.members.rotate_key(
            args.member_id,
            key.raw,
            possession=possession,
            overlap=timedelta(hours=args.overlap_hours),
        )
    finally:
        core.close()
    print(f"{args.member_id}: new key {key.keyid[:16]}… (log index {result.log_index})")
    return 0


def _members_list(args: argparse.Namespace) -> int:
    core = _with_core(args)
    try:
        for record in core.directory.members():
            keys = ", ".join(
                f"{k.public_key.hex()[:16]}…"
                + (f" until {k.not_after:%Y-%m-%d %H:%M}" if k.not_after else "")
                for k in record.keys
            )
            scope = record.authority_scope
            print(
                f"{record.member_id}\t{record.status.name.lower()}\t{record.region_code}\t"
                f"{keys}\t{'-' if scope is None else scope.name.lower()}"
            )
    finally:
        core.close()
    return 0


def _peers_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    engine = make_engine(config.database_url)
    try:
        check_schema(engine)
        store = SqlStore(engine)
        cursors = {c.peer: c for c in store.peer_cursors()}
        evidence = store.evidence()
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    header = ("PEER", "MODE", "CURSOR", "PEER SIZE", "BEHIND", "SECONDS", "LAST SUCCESS", "FAILS")
    rows: list[tuple[str, ...]] = []
    errors: list[str] = []
    for peer in config.peers:
        cursor = cursors.get(peer.member_id)
        mode = "pull" if peer.pull else "anchor"
        if cursor is None or cursor.origin != peer.log_origin:
            rows.append(
                (peer.member_id, mode, "-", "-", "-", "-", "never" if peer.pull else "-", "0")
            )
            continue
        behind = max(0, cursor.checkpoint_size - cursor.next_index)
        if behind == 0 and cursor.consecutive_failures == 0:
            seconds = "0"
        else:
            since = cursor.caught_up_at or cursor.updated_at
            seconds = f"{(now - since).total_seconds():.0f}"
        last = cursor.last_success_at
        rows.append(
            (
                peer.member_id,
                mode,
                str(cursor.next_index),
                str(cursor.checkpoint_size),
                str(behind),
                seconds,
                last.strftime("%Y-%m-%d %H:%M:%S") if last else "never",
                str(cursor.consecutive_failures),
            )
        )
        if cursor.last_error:
            errors.append(f"{peer.member_id}: {cursor.last_error}")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for line in errors:
        print(f"last error of {line}")
    for item in evidence:
        print(
            f"EVIDENCE {item.recorded_at:%Y-%m-%d %H:%M:%S} {item.peer} {item.kind}: {item.detail}"
        )
    return 0


def _check_log(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    engine = make_engine(config.database_url)
    try:
        check_schema(engine)
        store = SqlStore(engine)
        rows = IntegrityStore(store)
        recorded = rows.damage()
        began = time.monotonic()
        report = check_log(rows, store)
        seconds = time.monotonic() - began
        if args.record:
            rows.replace_damage(report.damages, found_by="check-log", at=datetime.now(UTC))
    finally:
        engine.dispose()
    newest = "none" if report.newest_checkpoint is None else str(report.newest_checkpoint)
    print(
        f"log {config.log_origin}: {report.size} entries, newest checkpoint {newest}, "
        f"{report.records} records below the size; checked in {seconds:.1f} s"
    )
    for damage in report.damages:
        print(f"DAMAGED {describe(damage)}")
    if report.checkpoint_problem:
        print(f"DAMAGED {report.checkpoint_problem}")
    if args.record:
        print(f"recorded {len(report.damages)} damaged range(s), replacing {len(recorded)}")
    if report.intact:
        print(
            "log intact: every record hashes to its record id and its leaf, every stored "
            "node to its children"
            + ("" if report.newest_checkpoint is None else ", and the tree reproduces ")
            + ("" if report.newest_checkpoint is None else f"checkpoint {newest}")
        )
        if recorded and not args.record:
            print(
                f"the database still records {len(recorded)} damaged range(s) the gateway "
                "answers DATA_LOSS for: run check-log --record to clear them"
            )
        return 0
    count = len(report.damages) + bool(report.checkpoint_problem)
    print(
        f"{count} damaged range(s): restore the database from backup (docs/OPERATIONS.md, "
        "backup and restore), then run check-log again"
    )
    return 1


def _signing_key(args: argparse.Namespace) -> int:
    print(generate_signing_key(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
