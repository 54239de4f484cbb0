"""Federation between real regional gateways: each with its own CA, trust domain, log
key and database, replicating over mTLS on reserved local ports."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from gwtest import (
    USCC,
    Alliance,
    Member,
    audit,
    confirmation,
    exchange,
    listing,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    subject_pb,
    submit,
)

from certs.pki import issue_gateway
from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.notes import Checkpoint, CosignatureSigner, NoteSigner, NoteVerifier, sign_note
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    AuthorityScope,
    LifecycleStep,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    Statement,
    StatusChange,
)
from gateway.errors import StorageError
from gateway.ops.app import Core, Gateway
from gateway.ops.cli import main as cli_main
from gateway.ops.config import Config
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import federation_pb2 as fe
from gateway.pb.alliance.v1 import federation_pb2_grpc
from gateway.service.replication import (
    PeerCheckpoint,
    PeerEntry,
    PeerItem,
    PeerLog,
    PeerPuller,
    ReplicationSettings,
)
from gateway.storage import PeerCursor, UnitOfWork

WAIT_S = 20.0


def reserve_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
    """Wait until ``check()`` holds; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@dataclass
class Region:
    """One regional alliance with a reserved gateway port, an authority and a platform."""

    alliance: Alliance
    port: int
    authority: Member
    platform: Member

    @property
    def trust_domain(self) -> str:
        return self.alliance.trust_domain

    @property
    def origin(self) -> str:
        return f"{self.trust_domain}/alliance-log/v1"

    @property
    def vkey(self) -> str:
        key = load_signing_key(self.alliance.gw_dir / "signing-key.pem")
        return NoteSigner(self.origin, key).verifier().vkey

    def peer(self, *, pull: bool = True) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.alliance.gateway_name,
            "trust_domain": self.trust_domain,
            "ca_file": str(self.alliance.ca),
            "log_origin": self.origin,
            "log_vkey": self.vkey,
            "pull": pull,
        }
        if pull:
            entry["address"] = f"127.0.0.1:{self.port}"
        return entry

    def config(self, database_url: str, peers: Sequence[dict[str, Any]]) -> Config:
        return self.alliance.config(
            database_url,
            listen_address=f"127.0.0.1:{self.port}",
            federation_backoff_initial_s=0.1,
            federation_backoff_max_s=0.5,
            peers=list(peers),
        )

    def members(self) -> tuple[Member, ...]:
        return (self.authority, self.platform)


def make_region(root: Path, code: str, region: str) -> Region:
    alliance = Alliance(root / code, f"{code}.alliance.test", region=region)
    authority = alliance.member("authority", f"{code}-amr", region=region[:2] + "0000")
    platform = alliance.member("platform", f"{code}-shop")
    return Region(alliance, reserve_port(), authority, platform)


@pytest.fixture
def regions(tmp_path: Path) -> tuple[Region, Region, Region]:
    return (
        make_region(tmp_path, "zj", "330100"),
        make_region(tmp_path, "gd", "440300"),
        make_region(tmp_path, "bj", "110000"),
    )


def mesh(regions: Sequence[Region], urls: Sequence[str]) -> list[Config]:
    return [
        r.config(url, [p.peer() for p in regions if p is not r])
        for r, url in zip(regions, urls, strict=True)
    ]


@contextmanager
def running(configs: Sequence[Config], regions: Sequence[Region]) -> Iterator[list[Gateway]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_gateway(c, register=r.members()))
            for c, r in zip(configs, regions, strict=True)
        ]


def set_hash(gw: Gateway) -> str:
    return hashlib.sha256("\n".join(gw.core.store.record_ids()).encode()).hexdigest()


def check(member: Member, gw: Gateway, *usccs: str) -> ex.CheckSubjectsResponse:
    with member.channel(gw.port) as ch:
        reply: ex.CheckSubjectsResponse = exchange(ch).CheckSubjects(
            ex.CheckSubjectsRequest(subjects=[subject_pb(listing(member, uscc=u)) for u in usccs]),
            timeout=10,
        )
    return reply


def listed(member: Member, gw: Gateway, uscc: str) -> bool:
    return bool(check(member, gw, uscc).results[0].listed)


def has(gw: Gateway, record_id: str) -> bool:
    return gw.core.store.record_by_id(record_id) is not None


def sanctions_of(member: Member, gw: Gateway, uscc: str) -> list[tuple[str, int]]:
    (result,) = check(member, gw, uscc).results
    return [(s.platform, s.measure) for st in result.listings for s in st.sanctions]


# -- full mesh ---------------------------------------------------------------------------


def test_mesh_replicates_listings_and_sanctions(
    regions: tuple[Region, Region, Region], tmp_path: Path
) -> None:
    zj, gd, bj = regions
    configs = mesh(regions, [f"sqlite:///{tmp_path / n}.db" for n in ("zj", "gd", "bj")])
    with running(configs, regions) as (a, b, c):
        env = zj.authority.sign(listing(zj.authority))
        with zj.authority.channel(a.port) as ch:
            listing_id = submit(ch, env).record_id
        eventually(lambda: listed(gd.platform, b, USCC[0]), "GD sees the ZJ listing")
        eventually(lambda: listed(bj.platform, c, USCC[0]), "BJ sees the ZJ listing")
        stored = b.core.store.record_by_id(listing_id)
        assert stored is not None and stored.signer == zj.authority.member_id
        assert stored.origin == zj.origin

        # A sanction confirmed in BJ reaches ZJ (and GD).
        conf = bj.platform.sign(confirmation(bj.platform, listing_id))
        with bj.platform.channel(c.port) as ch:
            submit(ch, conf)
        for gw, who in ((a, zj.platform), (b, gd.platform)):
            eventually(
                lambda gw=gw, who=who: (
                    sanctions_of(who, gw, USCC[0])  # type: ignore[misc]
                    == [(bj.platform.member_id, 12)]
                ),
                "the BJ sanction reaches the others",
            )

        # Every gateway holds the same records, each once, and answers the same.
        eventually(
            lambda: (
                len({set_hash(g) for g in (a, b, c)}) == 1
                and len({g.core.store.log_size() for g in (a, b, c)}) == 1
            ),
            "the three logs hold the same record set",
        )
        answers = {
            check(r.platform, g, *USCC).SerializeToString(deterministic=True)
            for r, g in zip(regions, (a, b, c), strict=True)
        }
        assert len(answers) == 1

        # Peers cosign each other's checkpoints (C2SP tlog-cosignature).
        def cosigned() -> bool:
            with zj.platform.channel(a.port) as ch:
                note = audit(ch).GetCheckpoint(au.GetCheckpointRequest(), timeout=5).note
            return gd.alliance.gateway_id in note and bj.alliance.gateway_id in note

        eventually(cosigned, "GD and BJ cosign ZJ's checkpoint")

        # Lag is visible: status, metrics, and the operator's table.
        statuses = {s.peer: s for s in a.replication.status()}
        assert set(statuses) == {gd.alliance.gateway_id, bj.alliance.gateway_id}
        eventually(
            lambda: all(
                s.entries_behind == 0 and s.consecutive_failures == 0
                for s in a.replication.status()
            ),
            "ZJ is connected to and caught up with its peers",
        )

        def gauge(name: str, peer: str) -> float | None:
            a._tick()
            value: float | None = a.metrics.registry.get_sample_value(name, {"peer": peer})
            return value

        eventually(
            lambda: (
                gauge("alliance_federation_entries_behind", gd.alliance.gateway_id) == 0.0
                and gauge("alliance_federation_seconds_behind", gd.alliance.gateway_id) == 0.0
            ),
            "the lag gauges show GD caught up",
        )
        assert (
            a.metrics.registry.get_sample_value(
                "alliance_federation_last_success_timestamp_seconds",
                {"peer": bj.alliance.gateway_id},
            )
            or 0
        ) > 0

        # Only configured peer gateways may replicate: another gateway certified
        # by a peer's CA is refused, and so is a platform.
        rogue_dir = tmp_path / "rogue"
        issue_gateway(gd.alliance.ca_dir, gd.trust_domain, "rogue", rogue_dir)
        rogue = Member(
            f"spiffe://{gd.trust_domain}/gateway/rogue",
            rogue_dir / "rogue.pem",
            rogue_dir / "rogue-key.pem",
            SigningKey.generate(),
            zj.alliance.ca,
            gd.alliance.region,
        )
        for caller in (rogue, zj.platform):
            with caller.channel(a.port) as ch, pytest.raises(grpc.RpcError) as err:
                stub = federation_pb2_grpc.FederationStub(ch)
                next(iter(stub.Replicate(fe.ReplicateRequest(), timeout=5)))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # A bad request is INVALID_ARGUMENT, from a configured peer.
        gd_gateway = gd.alliance.gateway_member()
        gd_gateway.ca = zj.alliance.ca  # to call ZJ: trust ZJ's CA
        with gd_gateway.channel(a.port) as ch:
            stub = federation_pb2_grpc.FederationStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                next(iter(stub.Replicate(fe.ReplicateRequest(from_index=10**9), timeout=5)))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # `alliance-gateway peers status` reads the table from the database.
    toml = tmp_path / "zj.toml"
    toml.write_text(_toml(configs[0]))
    assert cli_main(["peers", "status", "--config", str(toml)]) == 0


def _toml(config: Config) -> str:
    lines = [
        f'trust_domain = "{config.trust_domain}"',
        f'gateway_name = "{config.gateway_name}"',
        f'region_code = "{config.region_code}"',
        f'database_url = "{config.database_url}"',
        f'ca_file = "{config.ca_file}"',
        f'cert_file = "{config.cert_file}"',
        f'key_file = "{config.key_file}"',
        f'signing_key_file = "{config.signing_key_file}"',
    ]
    for p in config.peers:
        lines += [
            "",
            "[[peers]]",
            f'name = "{p.name}"',
            f'address = "{p.address}"',
            f'trust_domain = "{p.trust_domain}"',
            f'ca_file = "{p.ca_file}"',
            f'log_origin = "{p.log_origin}"',
            f'log_vkey = "{p.log_vkey}"',
        ]
    return "\n".join(lines) + "\n"


# -- catch-up after downtime -------------------------------------------------------------


def test_restarted_gateway_catches_up(
    regions: tuple[Region, Region, Region], tmp_path: Path, database_url: str
) -> None:
    zj, gd, bj = regions
    with ExitStack() as stack:
        if database_url.startswith("postgresql"):
            base = pg_base_url()
            assert base is not None
            others = [stack.enter_context(pg_schema_url(base)) for _ in range(2)]
        else:
            others = [f"sqlite:///{tmp_path / n}.db" for n in ("zj", "bj")]
        configs = mesh(regions, [others[0], database_url, others[1]])
        a = stack.enter_context(running_gateway(configs[0], register=zj.members()))
        c = stack.enter_context(running_gateway(configs[2], register=bj.members()))
        with running_gateway(configs[1], register=gd.members()) as b:
            with zj.authority.channel(a.port) as ch:
                first = submit(ch, zj.authority.sign(listing(zj.authority))).record_id
            eventually(lambda: has(b, first) and has(c, first), "the first listing spreads")
        # GD is down; ZJ keeps taking records, BJ confirms a sanction.
        with zj.authority.channel(a.port) as ch:
            later = [
                submit(ch, zj.authority.sign(listing(zj.authority, uscc=u))).record_id
                for u in USCC[1:]
            ]
        eventually(lambda: all(has(c, r) for r in later), "BJ gets the new listings")
        with bj.platform.channel(c.port) as ch:
            submit(ch, bj.platform.sign(confirmation(bj.platform, first)))
        eventually(
            lambda: any(
                s.peer == gd.alliance.gateway_id and s.consecutive_failures > 0
                for s in a.replication.status()
            ),
            "ZJ notices GD is down",
        )
        lagging = next(s for s in a.replication.status() if s.peer == gd.alliance.gateway_id)
        assert lagging.seconds_behind(datetime.now(UTC)) > 0

        with running_gateway(configs[1], register=gd.members()) as b:
            eventually(
                lambda: set_hash(a) == set_hash(b) == set_hash(c),
                "GD catches up and the three hold the same records",
            )
            assert a.core.store.log_size() == b.core.store.log_size() == c.core.store.log_size()
            answers = {
                check(r.platform, g, *USCC).SerializeToString(deterministic=True)
                for r, g in zip(regions, (a, b, c), strict=True)
            }
            assert len(answers) == 1
            assert check(gd.platform, b, *USCC).results[2].listed
            eventually(
                lambda: all(s.consecutive_failures == 0 for s in a.replication.status()),
                "ZJ is connected to GD again",
            )


# -- hub and spoke -----------------------------------------------------------------------


def test_hub_and_spoke_relays_each_record_once(
    regions: tuple[Region, Region, Region], tmp_path: Path
) -> None:
    zj, gd, bj = regions  # GD is the hub
    configs = [
        zj.config(f"sqlite:///{tmp_path / 'zj'}.db", [gd.peer(), bj.peer(pull=False)]),
        gd.config(f"sqlite:///{tmp_path / 'gd'}.db", [zj.peer(), bj.peer()]),
        bj.config(f"sqlite:///{tmp_path / 'bj'}.db", [gd.peer(), zj.peer(pull=False)]),
    ]
    with running(configs, regions) as (a, b, c):
        assert [len(g.replication.pullers) for g in (a, b, c)] == [1, 2, 1]
        with zj.authority.channel(a.port) as ch:
            listing_id = submit(ch, zj.authority.sign(listing(zj.authority))).record_id
        took = eventually(lambda: listed(bj.platform, c, USCC[0]), "BJ sees ZJ through GD")
        assert took < WAIT_S
        stored = c.core.store.record_by_id(listing_id)
        assert stored is not None and stored.origin == gd.origin  # relayed by the hub
        with bj.platform.channel(c.port) as ch:
            submit(ch, bj.platform.sign(confirmation(bj.platform, listing_id)))
        eventually(
            lambda: sanctions_of(zj.platform, a, USCC[0]) == [(bj.platform.member_id, 12)],
            "ZJ sees BJ's sanction through GD",
        )
        eventually(
            lambda: (
                set_hash(a) == set_hash(b) == set_hash(c)
                and a.core.store.log_size() == b.core.store.log_size() == c.core.store.log_size()
            ),
            "the three logs hold the same records, each once",
        )


# -- malicious peers ---------------------------------------------------------------------


class EvilLog:
    """A peer's log built by the test, with the peer's real key: valid checkpoints over
    whatever entries the test wants served."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.key = load_signing_key(region.alliance.gw_dir / "signing-key.pem")
        self.signer = NoteSigner(region.origin, self.key)

    def gateway_sign(self, statement: Statement) -> dsse.Envelope:
        return codec.seal(statement, self.key)

    def checkpoint(self, entries: Sequence[dsse.Envelope]) -> str:
        rng = merkle.CompactRange()
        rng.extend(merkle.leaf_hash(e.pae()) for e in entries)
        body = Checkpoint(self.region.origin, rng.size, rng.root()).body()
        return sign_note(body, [self.signer])

    def member_record(self, member: Member, *, issuer: str | None = None) -> MemberRecord:
        role = Role[member.member_id.split("/")[3].upper()]
        return MemberRecord(
            issuer=issuer or self.region.alliance.gateway_id,
            member_id=member.member_id,
            role=role,
            region_code=member.region,
            keys=(
                MemberKey(
                    public_key=member.signing_key.public_key().raw,
                    not_before=_T0,
                    possession=prove_possession(member.signing_key, member.member_id),
                ),
            ),
            status=MemberStatus.ACTIVE,
            issued_at=_T0,
            scope=AuthorityScope.UNIT if role is Role.AUTHORITY else None,
        )


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _cp(note: str, first: int = 0) -> fe.ReplicateResponse:
    return fe.ReplicateResponse(
        checkpoint=fe.CheckpointUpdate(
            checkpoint=au.SignedCheckpoint(note=note),
            consistency=au.ConsistencyProof(first_size=first),
        )
    )


def _entries(envs: Sequence[dsse.Envelope], start: int = 0) -> list[fe.ReplicateResponse]:
    return [
        fe.ReplicateResponse(
            entry=ex.LogEntry(
                log_index=start + i, record_id=e.record_id, envelope=codec.envelope_to_pb(e)
            )
        )
        for i, e in enumerate(envs)
    ]


class ScriptedFederation(federation_pb2_grpc.FederationServicer):
    """Serves a fixed Replicate stream, then holds it open like a tail."""

    def __init__(self, script: Sequence[fe.ReplicateResponse]) -> None:
        self.script = list(script)
        self.calls = 0

    def Replicate(
        self, request: fe.ReplicateRequest, context: grpc.ServicerContext
    ) -> Iterator[fe.ReplicateResponse]:
        self.calls += 1
        known = request.known_tree_size
        for item in self.script:
            if item.HasField("entry") and item.entry.log_index < request.from_index:
                continue
            reply = item
            if item.HasField("checkpoint") and known:
                # Like a real server: prove from the caller's checkpoint (equal sizes here).
                reply = fe.ReplicateResponse()
                reply.CopyFrom(item)
                reply.checkpoint.consistency.first_size = known
            yield reply
        deadline = time.monotonic() + 30
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def evil_server(region: Region, client_ca: Path, servicer: ScriptedFederation) -> Iterator[None]:
    gw = region.alliance.gateway_member()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    federation_pb2_grpc.add_FederationServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(gw.key.read_bytes(), gw.cert.read_bytes())],
        root_certificates=client_ca.read_bytes(),
        require_client_auth=True,
    )
    assert server.add_secure_port(f"127.0.0.1:{region.port}", credentials) == region.port
    server.start()
    try:
        yield
    finally:
        server.stop(0).wait()


def test_malicious_peers_are_refused(tmp_path: Path) -> None:
    home = make_region(tmp_path, "zj", "330100")
    forger, vouch, fork, early = (
        make_region(tmp_path, code, "440300") for code in ("ev1", "ev2", "ev3", "ev4")
    )

    # (a) a listing whose origin signature is forged (right keyid hint, wrong key).
    log_a = EvilLog(forger)
    real = forger.authority.sign(listing(forger.authority))
    forged_sig = dsse.sign(real.payload_type, real.payload, SigningKey.generate())
    forged = dsse.Envelope(
        real.payload,
        real.payload_type,
        (dsse.Signature(forged_sig.signatures[0].sig, real.signatures[0].keyid),),
    )
    entries_a = [log_a.gateway_sign(log_a.member_record(forger.authority)), forged]
    script_a = [_cp(log_a.checkpoint(entries_a)), *_entries(entries_a)]

    # (b) a member record of a ZJ member, vouched for by another region's gateway.
    log_b = EvilLog(vouch)
    intruder = home.alliance.member("platform", "intruder")
    entries_b = [
        log_b.gateway_sign(log_b.member_record(vouch.authority)),
        log_b.gateway_sign(log_b.member_record(intruder, issuer=home.alliance.gateway_id)),
    ]
    script_b = [_cp(log_b.checkpoint(entries_b)), *_entries(entries_b)]

    # (c) an honest first checkpoint, then another tree of the same size: a fork.
    log_c = EvilLog(fork)
    honest = [log_c.gateway_sign(log_c.member_record(fork.authority))]
    other = [log_c.gateway_sign(log_c.member_record(fork.platform))]
    script_c = [
        _cp(log_c.checkpoint(honest)),
        *_entries(honest),
        _cp(log_c.checkpoint(other), first=1),
        *_entries(other),
    ]

    # (d) a status change by a platform that may not make it, sent before its listing:
    # stored (its checks pass without the listing) but it never counts.
    log_d = EvilLog(early)
    the_listing = early.authority.sign(listing(early.authority, uscc=USCC[1]))
    change = early.platform.sign(
        StatusChange(
            issuer=early.platform.member_id,
            listing_id=the_listing.record_id,
            step=LifecycleStep.NOTICE_SERVED,
            effective_at=datetime(2026, 10, 5, tzinfo=UTC),
        )
    )
    entries_d = [
        log_d.gateway_sign(log_d.member_record(early.authority)),
        log_d.gateway_sign(log_d.member_record(early.platform)),
        change,
        the_listing,
    ]
    script_d = [_cp(log_d.checkpoint(entries_d)), *_entries(entries_d)]

    evil = [(forger, script_a), (vouch, script_b), (fork, script_c), (early, script_d)]
    config = home.config(f"sqlite:///{tmp_path / 'home.db'}", [r.peer() for r, _ in evil])
    with ExitStack() as stack:
        for region, script in evil:
            stack.enter_context(evil_server(region, home.alliance.ca, ScriptedFederation(script)))
        gw = stack.enter_context(running_gateway(config, register=home.members()))
        size = gw.core.store.log_size()
        status = {s.origin: s for s in gw.replication.status()}

        def failures(region: Region) -> int:
            (status,) = (s for s in gw.replication.status() if s.origin == region.origin)
            return status.consecutive_failures

        # A peer whose batch is refused makes no progress: its failures keep counting.
        for region in (forger, vouch):
            eventually(lambda region=region: failures(region) >= 3, f"{region.origin} refused")  # type: ignore[misc]
        eventually(lambda: bool(gw.core.store.evidence(fork.alliance.gateway_id)), "fork kept")
        eventually(lambda: has(gw, the_listing.record_id), "the early peer's records stored")
        # Two more refused sessions each: still nothing of the refused batches.
        for region in (forger, vouch):
            seen = failures(region)
            eventually(lambda r=region, n=seen: failures(r) >= n + 2, f"{region.origin} again")  # type: ignore[misc]

        for envs in (entries_a, entries_b, other):
            assert not any(has(gw, e.record_id) for e in envs)
        assert has(gw, honest[0].record_id)
        assert all(has(gw, e.record_id) for e in entries_d)
        assert gw.core.store.log_size() == size + len(honest) + len(entries_d)

        status = {s.origin: s for s in gw.replication.status()}
        assert "refused" in status[forger.origin].last_error
        # The record claims our gateway as issuer; only our gateway's key could sign it.
        assert f"issuer {home.alliance.gateway_id}" in status[vouch.origin].last_error
        evidence = gw.core.store.evidence(fork.alliance.gateway_id)
        assert [e.kind for e in evidence][:1] == ["fork"]
        assert evidence[0].accepted_note == log_c.checkpoint(honest)
        assert evidence[0].conflicting_note == log_c.checkpoint(other)
        assert not gw.core.store.evidence(forger.alliance.gateway_id)

        (result,) = check(home.platform, gw, USCC[1]).results
        (state,) = result.listings
        assert result.listed and state.step == LifecycleStep.LISTED.value


# -- the puller against an in-memory peer: atomic cursor, prefix proofs, restart ------------


class FakePeer:
    """An honest peer log in memory, implementing ``PeerClient``."""

    def __init__(self, log: EvilLog, entries: Sequence[dsse.Envelope]) -> None:
        self.log = log
        self.entries = list(entries)
        self.nodes = merkle.MemoryNodeStore()
        rng = merkle.CompactRange()
        for e in self.entries:
            self.nodes.put_many(rng.append(merkle.leaf_hash(e.pae())))
        self.requests: list[tuple[int, int]] = []
        self.proofs: list[tuple[int, int]] = []
        self.cosignatures: list[str] = []

    def replicate(self, from_index: int, known_tree_size: int) -> FakeStream:
        self.requests.append((from_index, known_tree_size))
        size = len(self.entries)
        items: list[PeerItem] = [
            PeerCheckpoint(
                self.log.checkpoint(self.entries),
                size,
                known_tree_size,
                tuple(merkle.consistency_proof(known_tree_size, size, self.nodes)),
            )
        ]
        items += [
            PeerEntry(i, e.record_id, e) for i, e in enumerate(self.entries) if i >= from_index
        ]
        return FakeStream(items)

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]:
        self.proofs.append((first_size, second_size))
        return merkle.consistency_proof(first_size, second_size, self.nodes)

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None:
        self.cosignatures.append(signature_line)

    def close(self) -> None:
        pass


class FakeStream:
    def __init__(self, items: Sequence[PeerItem]) -> None:
        self.items = list(items)
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[PeerItem]:
        yield from self.items
        self.cancelled.wait(30)  # a live tail: open until cancelled

    def cancel(self) -> None:
        self.cancelled.set()


def _puller(gw: Core, peer: Region, fake: FakePeer, batch_max: int) -> PeerPuller:
    return PeerPuller(
        PeerLog(peer.alliance.gateway_id, peer.origin, NoteVerifier.from_vkey(peer.vkey)),
        lambda: fake,
        ledger=gw.ledger,
        directory=gw.directory,
        store=gw.store,
        anchors=gw.anchors,
        cosigner=CosignatureSigner(gw.config.member_id, gw.key),
        settings=ReplicationSettings(
            backoff_initial_s=0.05, backoff_max_s=0.1, batch_max_entries=batch_max
        ),
    )


def test_cursor_commits_with_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = make_region(tmp_path, "zj", "330100")
    peer = make_region(tmp_path, "gd", "440300")
    log = EvilLog(peer)
    entries = [
        log.gateway_sign(log.member_record(peer.authority)),
        *(peer.authority.sign(listing(peer.authority, uscc=u)) for u in USCC),
    ]
    fake = FakePeer(log, entries)
    core = Core(home.config(f"sqlite:///{tmp_path / 'home.db'}", [peer.peer()]))
    try:
        size = core.store.log_size()
        # The first transaction dies after writing the records, before it commits.
        original = UnitOfWork.put_peer_cursor
        crashes = [True]

        def crash_once(self: UnitOfWork, cursor: PeerCursor) -> None:
            if crashes:
                crashes.pop()
                raise StorageError("simulated crash inside the transaction")
            original(self, cursor)

        monkeypatch.setattr(UnitOfWork, "put_peer_cursor", crash_once)
        puller = _puller(core, peer, fake, batch_max=2)
        puller.start()
        try:
            eventually(lambda: puller.view.next_index == len(entries), "the puller catches up")
        finally:
            puller.stop()
        assert not crashes and len(fake.requests) >= 2  # it failed once, then resumed
        assert fake.proofs  # batches of 2 were proven prefixes of the checkpoint
        assert core.store.log_size() == size + len(entries)
        assert all(has_record(core, e.record_id) for e in entries)
        cursor = core.store.peer_cursor(peer.alliance.gateway_id)
        assert cursor is not None and cursor.next_index == len(entries)
        assert fake.cosignatures  # the verified checkpoint was cosigned

        # A restart resumes from the stored cursor and stores nothing twice.
        again = _puller(core, peer, fake, batch_max=1000)
        assert again.view.next_index == len(entries)
        again.start()
        try:
            eventually(lambda: len(fake.requests) >= 3, "the new puller connects")
        finally:
            again.stop()
        assert fake.requests[-1] == (len(entries), len(entries))
        assert core.store.log_size() == size + len(entries)
    finally:
        core.close()


def has_record(core: Core, record_id: str) -> bool:
    return core.store.record_by_id(record_id) is not None
