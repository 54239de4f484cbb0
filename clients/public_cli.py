"""``alliance public verify URL``: check a page of a gateway's public feed end to end.

    alliance public verify http://credit.example/v1/feed?unit=33 [--log-vkey FILE]

Fetches the page (JSON), opens its checkpoint with the log's verifier key (``--log-vkey``,
a file holding ``alliance-gateway log-key`` output or the key itself; else the profile's
``log_vkey_file``), then fetches every entry's proof at the page's checkpoint and checks
it (``gateway.core.public_proof``: inclusion in the log, the authority's and the
gateway's signatures, for a platform's report the platform's signature and the
authority's IDENTIFIED step, the published fields against the signed ones). Needs no
certificate: the public service is plain HTTP(S) for anyone. Exit status 0 when every
entry verified, 1 when one did not, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from clients import i18n
from clients.i18n import _
from clients.profile import PROFILE_ENV, load_profile
from gateway.codec import decode_public
from gateway.core.notes import NoteVerifier, open_checkpoint
from gateway.core.public_proof import verify_entry_proof
from gateway.errors import ConfigError, GatewayError, RecordError, VerificationError

__all__ = ["add_subparsers", "fetch_json", "verify_page"]

_MAX_BYTES = 64 * 1024 * 1024


def add_subparsers(sub: Any) -> None:
    """Add ``public`` with ``verify``."""
    p = sub.add_parser("public", help=_("the public feed of a gateway (no certificate needed)"))
    psub = p.add_subparsers(dest="public_command", required=True)
    v = psub.add_parser("verify", help=_("fetch a feed page and verify every entry on it"))
    v.add_argument("url", help=_("a feed page, e.g. https://credit.example/v1/feed?unit=33"))
    v.add_argument(
        "--log-vkey",
        help=_(
            "the log's verifier key, or a file holding it (default: the profile's log_vkey_file)"
        ),
    )
    v.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    v.set_defaults(handler=run_verify)


def _verifier(args: argparse.Namespace) -> NoteVerifier:
    value = args.log_vkey
    if value:
        path = Path(value).expanduser()
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()
        try:
            return NoteVerifier.from_vkey(text)
        except GatewayError as e:
            raise ConfigError(
                f"--log-vkey: {e}",
                advice="pass the output of `alliance-gateway log-key` (or a file holding it)",
            ) from e
    if args.profile is None and not _env_profile():
        raise ConfigError(
            "no log verifier key",
            advice=f"pass --log-vkey, or a profile (--profile or ${PROFILE_ENV}) "
            "with log_vkey_file",
        )
    return load_profile(args.profile).log_verifier()


def _env_profile() -> bool:
    return bool(os.environ.get(PROFILE_ENV))


def fetch_json(url: str, timeout_s: float) -> Any:
    """GET ``url`` and parse its JSON; ``RecordError`` with the server's message else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RecordError(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:  # noqa: S310 (checked above)
            body = r.read(_MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        detail = e.read(4096).decode("utf-8", "replace")
        raise RecordError(
            f"{url}: HTTP {e.code}: {detail}",
            advice="retry after the time in Retry-After" if e.code == 429 else "",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise RecordError(f"{url}: {e}", advice="check the address and the network") from None
    if len(body) > _MAX_BYTES:
        raise RecordError(f"{url}: the answer is larger than {_MAX_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as e:
        raise RecordError(
            f"{url}: not JSON ({e})", advice="verify the JSON feed (drop format=csv)"
        ) from None


def verify_page(url: str, verifier: NoteVerifier, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Verify every entry of the page at ``url``; the outcome per entry."""
    page = fetch_json(url, timeout_s)
    if not isinstance(page, dict) or not isinstance(page.get("entries"), list):
        raise RecordError(f"{url}: not a feed page (no entries)")
    checkpoint = open_checkpoint(str(page.get("checkpoint", "")), verifier)
    if checkpoint.size != page.get("tree_size"):
        raise RecordError(f"{url}: tree_size does not match the page's checkpoint")
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    results = []
    for entry in page["entries"]:
        rid = str(entry.get("record_id", "")) if isinstance(entry, dict) else ""
        outcome: dict[str, Any] = {"record_id": rid, "uscc": entry.get("uscc", "")}
        try:
            if len(rid) != 64 or not all(c in "0123456789abcdef" for c in rid):
                raise RecordError("the entry has no valid record_id")
            doc = fetch_json(
                f"{base}/v1/entries/{rid}/proof?tree_size={checkpoint.size}", timeout_s
            )
            proved = verify_entry_proof(doc, verifier, decode=decode_public)
            if proved.checkpoint != checkpoint:
                raise RecordError("the proof is against another checkpoint than the page's")
            shown = {k: entry.get(k) for k in proved.fields}
            if shown != dict(proved.fields):
                wrong = sorted(k for k in proved.fields if entry.get(k) != proved.fields[k])
                raise RecordError(f"the page shows other values than signed: {', '.join(wrong)}")
            outcome["ok"] = True
        except GatewayError as e:
            outcome.update(ok=False, error=str(e))
        results.append(outcome)
    return {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "entries": results,
        "verified": sum(1 for r in results if r["ok"]),
        "failed": sum(1 for r in results if not r["ok"]),
    }


def run_verify(args: argparse.Namespace) -> int:
    verifier = _verifier(args)
    try:
        result = verify_page(args.url, verifier, timeout_s=getattr(args, "timeout", 10.0))
    except VerificationError as e:
        message = _("the page's checkpoint does not verify: %(error)s") % {"error": e}
        sys.stderr.write(
            i18n.error_lines(message, _("is --log-vkey the key of this gateway's log?"))
        )
        return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for r in result["entries"]:
            if r["ok"]:
                print(
                    _("ok      %(record)s  %(uscc)s")
                    % {"record": r["record_id"], "uscc": r["uscc"]}
                )
            else:
                values = {"record": r["record_id"] or "?", "error": r["error"]}
                print(_("FAILED  %(record)s  %(error)s") % values)
        text = _(
            "%(verified)d verified, %(failed)d failed against checkpoint %(origin)s size %(size)d"
        )
        values = {
            "verified": result["verified"],
            "failed": result["failed"],
            "origin": result["origin"],
            "size": result["tree_size"],
        }
        print(text % values)
    if result["failed"]:
        message = _("some entries did not verify (see FAILED above)")
        sys.stderr.write(i18n.error_lines(message, _("compare the page with the signed records")))
        return 1
    return 0
