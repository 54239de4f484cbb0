"""``alliance-gateway certs …``: the operator's PKI commands.

Failures print ``error: <message>`` and ``hint: <advice>`` to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from certs import pki
from gateway.errors import ConfigError, GatewayError

EXIT_OK = 0
EXIT_ERROR = 2

_Handler = Callable[[argparse.Namespace], None]


def build_parser(prog: str = "alliance-gateway certs") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Manage the alliance PKI: CA, member certificates, keys."
    )
    add_subcommands(parser)
    return parser


def add_subparsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``certs`` on a parent CLI; dispatch with ``run(args)``."""
    parser = subparsers.add_parser("certs", help="manage the alliance PKI")
    add_subcommands(parser)


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)

    p = sub.add_parser("init-ca", help="create the CA of a trust domain")
    p.add_argument("--dir", type=Path, required=True, help="directory for the CA files")
    p.add_argument("--trust-domain", required=True, help="e.g. north.alliance.example")
    p.add_argument("--days", type=int, default=3650)
    p.add_argument("--force", action="store_true", help="replace an existing CA")
    p.set_defaults(certs_handler=_init_ca)

    p = sub.add_parser("issue", help="issue a member certificate")
    p.add_argument("--ca", type=Path, required=True, help="the CA directory")
    p.add_argument("--member-id", required=True, help="spiffe://<trust-domain>/<role>/<name>")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--dns", action="append", default=[], help="a DNS SAN (repeatable)")
    p.add_argument("--ip", action="append", default=[], help="an IP SAN (repeatable)")
    p.add_argument("--days", type=int, default=397)
    p.set_defaults(certs_handler=_issue)

    p = sub.add_parser("issue-gateway", help="issue a gateway's server/client certificate")
    p.add_argument("--ca", type=Path, required=True, help="the CA directory")
    p.add_argument("--trust-domain", required=True)
    p.add_argument("--name", required=True, help="the gateway's name")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--host",
        action="append",
        default=None,
        help="DNS name or IP the gateway serves on (repeatable; default localhost, 127.0.0.1)",
    )
    p.add_argument("--days", type=int, default=397)
    p.set_defaults(certs_handler=_issue_gateway)

    p = sub.add_parser("signing-key", help="generate an Ed25519 record-signing key")
    p.add_argument("--out", type=Path, required=True, help="private key file (PEM, 0600)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p.set_defaults(certs_handler=_signing_key)

    p = sub.add_parser(
        "possession",
        help="print the proof that you hold a signing key (hand it to your gateway operator)",
    )
    p.add_argument("--key", type=Path, required=True, help="your signing key (private PEM)")
    p.add_argument("--member-id", required=True, help="the member id to register the key for")
    p.add_argument(
        "--public-key-out", type=Path, help="also write the public key PEM for the operator"
    )
    p.set_defaults(certs_handler=_possession)

    p = sub.add_parser("revoke", help="revoke a certificate and rewrite the CRL")
    p.add_argument("--ca", type=Path, required=True, help="the CA directory")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--cert", type=Path, help="the certificate file")
    which.add_argument("--serial", type=_parse_serial, help="serial, decimal or 0x-hex")
    p.set_defaults(certs_handler=_revoke)

    p = sub.add_parser("refresh-crl", help="re-sign the CRL with a new nextUpdate")
    p.add_argument("--ca", type=Path, required=True, help="the CA directory")
    p.set_defaults(certs_handler=_refresh_crl)

    p = sub.add_parser("show", help="print a certificate's member id, serial and expiry")
    p.add_argument("file", type=Path)
    p.set_defaults(certs_handler=_show)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``certs`` command; returns the exit status."""
    handler: _Handler = args.certs_handler
    try:
        handler(args)
    except GatewayError as e:
        return _fail(e.message, e.advice)
    except OSError as e:
        return _fail(str(e), "check the path and its permissions")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(build_parser("python -m certs").parse_args(argv))


def _fail(message: str, advice: str) -> int:
    print(f"error: {message}\nhint: {advice}", file=sys.stderr)
    return EXIT_ERROR


def _parse_serial(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a serial number: {text!r}") from None


def _init_ca(args: argparse.Namespace) -> None:
    files = pki.create_ca(args.dir, args.trust_domain, days=args.days, force=args.force)
    print(f"CA for {files.trust_domain}: {files.cert} (key {files.key}, CRL {files.crl})")


def _print_issued(files: pki.IssuedFiles) -> None:
    print(f"member id: {files.member_id}")
    print(f"certificate: {files.cert}")
    print(f"key: {files.key}")
    print(f"serial: {files.serial:#x}")
    print(f"not after: {files.not_after.isoformat()}")


def _issue(args: argparse.Namespace) -> None:
    files = pki.issue_member(
        args.ca,
        args.member_id,
        args.out,
        days=args.days,
        dns_names=args.dns,
        ip_addresses=args.ip,
    )
    _print_issued(files)


def _issue_gateway(args: argparse.Namespace) -> None:
    hosts = args.host if args.host is not None else ("localhost", "127.0.0.1")
    files = pki.issue_gateway(
        args.ca, args.trust_domain, args.name, args.out, hosts=hosts, days=args.days
    )
    _print_issued(files)


def _signing_key(args: argparse.Namespace) -> None:
    public_hex = pki.generate_signing_key(args.out, force=args.force)
    print(f"signing key: {args.out}")
    print(f"public key: {public_hex}")


def _possession(args: argparse.Namespace) -> None:
    public_hex, proof = pki.possession_proof(args.key, args.member_id)
    if args.public_key_out is not None:
        pki.write_public_key(args.key, args.public_key_out)
        print(f"public key file: {args.public_key_out}")
    print(f"member id: {args.member_id}")
    print(f"public key: {public_hex}")
    print(f"possession: {base64.b64encode(proof).decode('ascii')}")


def _revoke(args: argparse.Namespace) -> None:
    target: Path | int = args.cert if args.cert is not None else args.serial
    pki.revoke(args.ca, target)
    shown = target if isinstance(target, Path) else f"serial {target:#x}"
    print(f"revoked {shown}; CRL rewritten: {args.ca / pki.CRL_FILE}")


def _refresh_crl(args: argparse.Namespace) -> None:
    print(f"CRL re-signed: {pki.refresh_crl(args.ca)}")


def _show(args: argparse.Namespace) -> None:
    try:
        pem = args.file.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read {args.file}: {e.strerror}", advice="check the path and its permissions"
        ) from e
    print(f"member id: {pki.read_member_id(pem)}")
    print(f"serial: {pki.certificate_serial(pem):#x}")
    print(f"not after: {pki.certificate_not_after(pem).isoformat()}")
