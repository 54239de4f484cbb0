"""``make federation-demo``: three regional alliances federate on this machine.

Creates Zhejiang (zj), Guangdong (gd) and Beijing (bj) alliances in a fresh folder, each
with its own CA, gateway certificate and Ed25519 log key, a platform and an authority,
and a ``gateway.toml`` listing the other two as peers (full mesh). Starts the three
gateways in this process on SQLite and free local ports, then tells the story: the ZJ
authority lists a seller; the GD and BJ platforms see the listing; the GD platform closes
the seller's store and ZJ sees the confirmation. Prints timings, stops everything.
Development material only: never use these keys in production.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from certs.pki import create_ca, generate_signing_key, issue_gateway, issue_member
from clients.client import AllianceClient, RetryPolicy, SubjectStatus
from clients.profile import Profile
from gateway.core.crypto import load_signing_key
from gateway.core.notes import NoteSigner
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    ConductType,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Subject,
)
from gateway.errors import GatewayError
from gateway.ops.app import Gateway
from gateway.ops.config import load_config

SELLER = "91330100716105852F"  # a valid Unified Social Credit Code (Hangzhou)
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    region_code: str


REGIONS = (
    Region("zj", "Zhejiang", "330100"),
    Region("gd", "Guangdong", "440300"),
    Region("bj", "Beijing", "110000"),
)


@dataclass
class Actor:
    member_id: str
    cert: Path
    key: Path
    signing_key_file: Path
    ca: Path
    region: str

    def client(self, port: int, stack: ExitStack) -> AllianceClient:
        """A member's client (the ``clients`` library) connected to its own gateway."""
        profile = Profile(
            member_id=self.member_id,
            gateway=f"127.0.0.1:{port}",
            region_code=self.region,
            ca_file=self.ca,
            cert_file=self.cert,
            key_file=self.key,
            signing_key_file=self.signing_key_file,
            state_dir=self.cert.parent / "audit-state",
        )
        return stack.enter_context(
            AllianceClient(profile, retry=RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0))
        )

    def public_key(self) -> bytes:
        return load_signing_key(self.signing_key_file).public_key().raw

    def possession(self) -> bytes:
        """The member's proof that it holds its key, for its registration."""
        return prove_possession(load_signing_key(self.signing_key_file), self.member_id)


@dataclass
class Site:
    region: Region
    root: Path
    port: int
    platform: Actor
    authority: Actor

    @property
    def trust_domain(self) -> str:
        return f"{self.region.code}.alliance.test"

    @property
    def origin(self) -> str:
        return f"{self.trust_domain}/alliance-log/v1"

    @property
    def config_path(self) -> Path:
        return self.root / "gateway" / "gateway.toml"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _actor(site_root: Path, ca: Path, member_id: str, name: str, region: str) -> Actor:
    folder = site_root / "members" / name
    issued = issue_member(ca, member_id, folder)
    generate_signing_key(folder / "signing-key.pem")
    return Actor(
        member_id, issued.cert, issued.key, folder / "signing-key.pem", ca / "ca.pem", region
    )


def prepare(base: Path) -> list[Site]:
    """Create the three alliances' PKI, keys and member material under ``base``."""
    sites = []
    for region in REGIONS:
        root = base / region.code
        td = f"{region.code}.alliance.test"
        ca = root / "ca"
        create_ca(ca, td)
        issue_gateway(ca, td, "gateway", root / "gateway")
        generate_signing_key(root / "gateway" / "signing-key.pem")
        platform = _actor(
            root,
            ca,
            f"spiffe://{td}/platform/{region.code}-mall",
            f"{region.code}-mall",
            region.region_code,
        )
        authority = _actor(
            root,
            ca,
            f"spiffe://{td}/authority/{region.code}-amr",
            f"{region.code}-amr",
            region.region_code[:2] + "0000",
        )
        sites.append(Site(region, root, _free_port(), platform, authority))
    for site in sites:
        _write_config(site, [s for s in sites if s is not site])
    return sites


def _write_config(site: Site, peers: Sequence[Site]) -> None:
    lines = [
        f'trust_domain = "{site.trust_domain}"',
        'gateway_name = "gateway"',
        f'region_code = "{site.region.region_code}"',
        f'listen_address = "127.0.0.1:{site.port}"',
        'metrics_address = "127.0.0.1:0"',
        'database_url = "sqlite:///gateway.db"',
        'ca_file = "../ca/ca.pem"',
        'cert_file = "gateway.pem"',
        'key_file = "gateway-key.pem"',
        'signing_key_file = "signing-key.pem"',
        'crl_file = "../ca/crl.pem"',
        "checkpoint_interval_s = 0.25",
        "federation_backoff_initial_s = 0.2",
        "federation_backoff_max_s = 2.0",
    ]
    for peer in peers:
        key = load_signing_key(peer.root / "gateway" / "signing-key.pem")
        vkey = NoteSigner(peer.origin, key).verifier().vkey
        lines += [
            "",
            f"# {peer.region.name}",
            "[[peers]]",
            'name = "gateway"',
            f'address = "127.0.0.1:{peer.port}"',
            f'trust_domain = "{peer.trust_domain}"',
            f'ca_file = "../../{peer.region.code}/ca/ca.pem"',
            f'crl_file = "../../{peer.region.code}/ca/crl.pem"',
            f'log_origin = "{peer.origin}"',
            f'log_vkey = "{vkey}"',
        ]
    site.config_path.write_text("\n".join(lines) + "\n")


@contextmanager
def running(sites: Sequence[Site]) -> Iterator[list[Gateway]]:
    gateways: list[Gateway] = []
    try:
        for site in sites:
            gw = Gateway(load_config(site.config_path))
            for actor in (site.platform, site.authority):
                gw.core.members.add(
                    actor.member_id,
                    actor.region,
                    actor.public_key(),
                    possession=actor.possession(),
                )
            gateways.append(gw.start(serve_metrics=False))
        yield gateways
    finally:
        for gw in reversed(gateways):
            gw.stop(grace_s=1.0)


def _wait(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < TIMEOUT_S:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise TimeoutError(f"not within {TIMEOUT_S:.0f}s: {what}")


def _status(client: AllianceClient) -> SubjectStatus:
    (status,) = client.check([Subject(uscc=SELLER)])
    return status


def story(sites: Sequence[Site], gateways: Sequence[Gateway]) -> None:
    zj, gd, bj = sites
    gw_zj, gw_gd, gw_bj = gateways
    with ExitStack() as stack:
        zj_amr = zj.authority.client(gw_zj.port, stack)
        zj_mall = zj.platform.client(gw_zj.port, stack)
        gd_mall = gd.platform.client(gw_gd.port, stack)
        bj_mall = bj.platform.client(gw_bj.port, stack)

        listing = Listing(
            issuer=zj.authority.member_id,
            subject=Subject(uscc=SELLER),
            list=ListKind.BLACKLIST,
            conduct=ConductType.FAKE_TRANSACTIONS,
            region_code="330100",
            decision_ref="ZJ-AMR-2026-0042",
            listed_at=datetime.now(UTC),
        )
        start = time.monotonic()
        reply = zj_amr.submit(listing)
        listing_id = reply.record_id
        print(
            f"[{time.monotonic() - start:5.2f}s] ZJ authority lists seller {SELLER} for fake "
            f"transactions (record {listing_id[:12]}…, ZJ log index {reply.log_index})"
        )
        for name, stub in (("Guangdong", gd_mall), ("Beijing", bj_mall)):
            _wait(lambda stub=stub: _status(stub).listed, f"{name} sees the listing")  # type: ignore[misc]
            print(
                f"[{time.monotonic() - start:5.2f}s] {name}'s platform checks the seller at "
                "onboarding: BLACKLISTED (replicated from Zhejiang, signature verified end to end)"
            )

        confirmation = SanctionConfirmation(
            issuer=gd.platform.member_id,
            listing_id=listing_id,
            measure=SanctionMeasure.CLOSE_STORE,
            action=SanctionAction.APPLIED,
            effective_at=datetime.now(UTC),
            store_id="gd-store-8841",
        )
        t1 = time.monotonic()
        gd_mall.submit(confirmation)
        print(f"[{t1 - start:5.2f}s] Guangdong's platform closes the seller's store and confirms")

        def zj_sees_it() -> bool:
            listings = _status(zj_mall).listings
            return any(s.platform == gd.platform.member_id for st in listings for s in st.sanctions)

        _wait(zj_sees_it, "Zhejiang sees the sanction")
        print(
            f"[{time.monotonic() - start:5.2f}s] Zhejiang sees the store closure confirmed by "
            f"{gd.platform.member_id} ({time.monotonic() - t1:.2f}s after it was made)"
        )

        def same_records() -> bool:
            sets = {tuple(g.core.store.record_ids()) for g in gateways}
            return len(sets) == 1

        _wait(same_records, "the three logs converge")
        size = gw_zj.core.store.log_size()
        print(
            f"[{time.monotonic() - start:5.2f}s] the three gateways hold the same {size} "
            "records (each in its own Merkle log, cosigned by its peers)"
        )
        for site, gw in zip(sites, gateways, strict=True):
            lags = ", ".join(
                f"{s.peer.split('/')[2].split('.')[0]}: {s.entries_behind} behind"
                for s in gw.replication.status()
            )
            print(f"    {site.region.name:<9} log {gw.core.ledger.size:>2} entries; peers {lags}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.ops.federation_demo", description=__doc__
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the alliances here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    base = args.dir.resolve() if args.dir else Path(tempfile.mkdtemp(prefix="federation-"))
    if args.dir and base.exists():
        shutil.rmtree(base)  # a fresh federation every run
    base.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.monotonic()
        sites = prepare(base)
        print(
            f"three regional alliances (Zhejiang, Guangdong, Beijing) created in {base} "
            f"in {time.monotonic() - t0:.1f}s: a CA, gateway key and two members each"
        )
        with running(sites) as gateways:
            ports = ", ".join(f"{s.region.code}:{s.port}" for s in sites)
            print(f"gateways up on 127.0.0.1 ({ports}), full mesh over mTLS")
            story(sites, gateways)
        print("gateways stopped; federation demo done")
        return 0
    except (TimeoutError, OSError, GatewayError) as e:
        print(f"federation demo failed: {e}", file=sys.stderr)
        return 1
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
