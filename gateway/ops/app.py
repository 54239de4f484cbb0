"""Assemble and run one gateway: storage, log, directory, sequencer, gRPC server.

``Gateway(config).start()`` binds (port 0 allowed), ``.port`` tells where, and
``.stop()`` shuts down gracefully: the server stops taking calls, in-flight calls get
the grace period, the sequencer finishes what it was handed, the database closes.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from certs.pki import RevocationList
from gateway.core.crypto import VerifyingKey, load_signing_key
from gateway.core.dsse import pae
from gateway.core.identifiers import MemberId, Role
from gateway.core.logcheck import RECORDS, Damage
from gateway.core.notes import CosignatureSigner, NoteSigner, NoteVerifier
from gateway.core.statements import ALLIANCE_POLICY_V1, MEMBER_RECORD_TYPES, Erasure
from gateway.errors import ConfigError, PermissionError
from gateway.ops.compliance_app import SERVICE_NAME as COMPLIANCE_SERVICE
from gateway.ops.compliance_app import ComplianceRuntime
from gateway.ops.config import Config, PeerConfig
from gateway.ops.fdlimit import ensure_open_files
from gateway.ops.metrics import GatewayMetrics
from gateway.ops.public_metrics import PublicMetrics
from gateway.ops.scrub_metrics import ScrubMetrics
from gateway.ops.state_metrics import StateMetrics
from gateway.public import PublicServer, PublicSettings, RateSettings, ServeSettings, build_app
from gateway.service.access_log import DIGEST_INFO as ACCESS_DIGEST_INFO
from gateway.service.access_log import AccessLog
from gateway.service.audit import AuditService
from gateway.service.directory import Directory
from gateway.service.integrity import startup_check
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.service.members import MemberAdmin
from gateway.service.policies import Policies, PolicyAdmin
from gateway.service.publication import PublicFeed
from gateway.service.query import QueryService
from gateway.service.replication import (
    CheckpointBeacon,
    PeerClient,
    PeerLog,
    PeerPuller,
    Replication,
    ReplicationFeed,
    ReplicationSettings,
)
from gateway.service.retention import RecordKind, RetentionEraser, RetentionSettings
from gateway.service.scrubber import Scrubber, ScrubSettings
from gateway.service.sequencer import Sequencer
from gateway.service.submit import SubmitService
from gateway.storage import (
    AccessStore,
    SqlStore,
    WalCheckpointer,
    check_schema,
    make_engine,
    migrate,
)
from gateway.storage.db import current_revision
from gateway.storage.disclosures import SUBJECT_INDEX_INFO, SubjectIndex, digest_clear_keys
from gateway.storage.integrity import IntegrityStore
from gateway.storage.retention import RetentionStore
from gateway.transport.audit import AuditLogServicer
from gateway.transport.exchange import ExchangeServicer
from gateway.transport.federation import FederationServicer
from gateway.transport.identity import Caller, TrustBundles
from gateway.transport.interceptor import StreamRules
from gateway.transport.limits import Limits, LimitSettings
from gateway.transport.peer_client import GrpcPeerClient
from gateway.transport.server import GatewayServer, ServerSettings

logger = logging.getLogger(__name__)


class Core:
    """Everything but the network: usable by the operator CLI without serving."""

    def __init__(
        self, config: Config, *, clock: Clock = utc_now, auto_migrate: bool = True
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine = make_engine(config.database_url, background_checkpoints=True)
        self.wal: WalCheckpointer | None = None
        if auto_migrate and current_revision(self.engine) is None:
            logger.info("new database: creating the schema")
            migrate(self.engine)
        check_schema(self.engine)
        self.key = load_signing_key(config.signing_key_file)
        index = SubjectIndex(self.key.derive_secret(SUBJECT_INDEX_INFO))
        self.store = SqlStore(self.engine, subject_index=index)
        converted = digest_clear_keys(self.engine, index)
        if converted:
            logger.info("lookup index: %d subject keys stored in the clear now digests", converted)
        # Before anything reads the log: its records cover its signed tree, and its
        # newest entries rehash to their ids, leaves and nodes; then reads refuse the
        # ranges found damaged earlier.
        self.integrity = IntegrityStore(self.store)
        startup_check(self.integrity, entries=config.startup_check_entries)
        self.integrity.load_damage()
        self.note_signer = NoteSigner(config.log_origin, self.key)
        anchors = {config.member_id: self.key.public_key()}
        for peer in config.peers:
            verifier = NoteVerifier.from_vkey(peer.log_vkey)
            anchors[peer.member_id] = VerifyingKey.from_raw(verifier.key.raw)
        self.anchors = frozenset(anchors)
        self.directory = Directory(anchors, clock=clock)
        self.policies = Policies(clock=clock)
        self._load_members()
        # Told of every erasure this process appends, local or replicated (the metrics).
        self.erasure_observers: list[Callable[[Sequence[tuple[str, Erasure]]], None]] = []
        self.ledger = Ledger(
            self.store,
            on_members=self.directory.apply,
            on_policies=self.policies.apply,
            on_erasures=self._erasures_appended,
            on_resync=self._load_members,
            clock=clock,
        )
        self.ledger.verify_against_checkpoint()
        self.members = MemberAdmin(
            self.ledger,
            self.directory,
            self.key,
            gateway_id=config.member_id,
            origin=config.log_origin,
            intake=config.intake_rules,
            clock=clock,
        )
        self.policy_admin = PolicyAdmin(
            self.ledger,
            self.key,
            gateway_id=config.member_id,
            origin=config.log_origin,
            intake=config.intake_rules,
            clock=clock,
        )
        # SQLite: the WAL is copied back on a thread of its own, not in the sequencer's
        # commits (gateway.storage.walcheck); until it starts the WAL only grows.
        self.wal = WalCheckpointer.started_for(self.engine)

    def _load_members(self) -> None:
        """Reload what the ledger keeps in memory: member records and alliance policies."""
        rows = self.store.records_of_types(sorted(MEMBER_RECORD_TYPES | {ALLIANCE_POLICY_V1}))
        intact, damaged = [], []
        for r in rows:
            if hashlib.sha256(pae(r.payload_type, r.payload)).hexdigest() == r.record_id:
                intact.append(r)
            else:
                damaged.append(Damage(RECORDS, r.log_index, r.log_index + 1, "altered record"))
        if damaged:
            # Older than the start-up check's window: recorded like the scrubber's
            # findings (reads of it are DATA_LOSS), and not believed.
            logger.error(
                "%d stored member record(s) no longer hash to their ids; left out of the "
                "directory (run `alliance-gateway check-log`, restore from backup)",
                len(damaged),
            )
            self.integrity.add_damage(damaged, found_by="start-up", at=self.clock())
            self.integrity.load_damage()
        self.directory.reload(
            (r.record_id, r.payload_type, r.payload)
            for r in intact
            if r.payload_type in MEMBER_RECORD_TYPES
        )
        self.policies.reload(
            (r.record_id, r.payload_type, r.payload)
            for r in intact
            if r.payload_type == ALLIANCE_POLICY_V1
        )

    def _erasures_appended(self, erasures: Sequence[tuple[str, Erasure]]) -> None:
        # The batch is committed: an observer's failure must not fail the append.
        for observe in self.erasure_observers:
            try:
                observe(erasures)
            except Exception:
                logger.exception("an observer of erasures failed")

    def close(self) -> None:
        if self.wal is not None:
            self.wal.stop()
        self.engine.dispose()


def revocation_lists(config: Config) -> dict[str, RevocationList]:
    """The CRL of each trust domain we admit callers from: ours and each peer's that
    names one (re-read on change by ``Gateway._tick``)."""
    crls: dict[str, RevocationList] = {}
    if config.crl_file is not None:
        crls[config.trust_domain] = RevocationList(config.crl_file, config.ca_file)
    for peer in config.peers:
        if peer.crl_file is None:
            logger.warning(
                "peer %s names no crl_file: certificates its CA revoked are still admitted",
                peer.member_id,
            )
            continue
        crls[peer.trust_domain] = RevocationList(peer.crl_file, peer.ca_file)
    for domain, crl in crls.items():
        if not crl.path.is_file():
            logger.warning(
                "CRL %s of %s does not exist (yet): nothing is revoked", crl.path, domain
            )
    return crls


class _Admission:
    """Members of our trust domain in good standing, and configured peer gateways.

    Of the gateway role, only configured identities are admitted: ours (our replicas
    share it) and each configured peer's. A certificate our CA issued to any other
    gateway name, or a member record that registered one, admits nothing.
    """

    def __init__(
        self, config: Config, directory: Directory, crls: dict[str, RevocationList]
    ) -> None:
        self._trust_domain = config.trust_domain
        self._own = config.member_id
        self._peers = {p.member_id for p in config.peers}
        self._directory = directory
        self._crls = crls
        bundles: dict[str, list[Path]] = {config.trust_domain: [config.ca_file]}
        for peer in config.peers:
            bundles.setdefault(peer.trust_domain, []).append(peer.ca_file)
        self._bundles = TrustBundles(bundles)

    def admit(self, caller: Caller) -> None:
        # TLS accepted any configured root; only a CA of the trust domain the certificate
        # names may vouch for it, so a peer's CA cannot mint our members (or another peer's).
        self._bundles.check(caller)
        crl = self._crls.get(caller.member.trust_domain)
        if crl is not None and crl.is_revoked(caller.serial):
            raise PermissionError(
                f"certificate {caller.serial:x} of {caller.member_id} is revoked",
                advice="ask your alliance's CA operator for a new certificate",
            )
        if caller.member.trust_domain != self._trust_domain:
            if caller.member_id in self._peers:
                return
            raise PermissionError(
                f"{caller.member_id} is not a member of this alliance nor a configured peer"
            )
        if caller.member_id == self._own:
            return
        if caller.member.role is Role.GATEWAY:
            raise PermissionError(
                f"{caller.member_id} is not this alliance's configured gateway "
                f"({self._own}); no other gateway identity is admitted",
                advice="replicas of this gateway use its own certificate",
            )
        self._directory.require_active(caller.member_id)


STATE_METRICS_INTERVAL_S = 10.0
ACCESS_LOG_PRUNE_INTERVAL_S = 3600.0


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` tells the wall time (records, deadlines); ``monotonic`` measures the
        request rates, idle streams and the CRL reload interval. Tests pass fake ones."""
        config.check_files()
        self.config = config
        self._monotonic = monotonic
        self.core = Core(config, clock=clock)
        self.metrics = GatewayMetrics()
        self.metrics.build.info({"version": "0.1.0"})
        self._stopping = threading.Event()
        self._stop_metrics: object = None
        self._crls = revocation_lists(config)
        self._crl_checked = monotonic()
        core = self.core
        core.members.ensure_self(config.region_code)
        self.sequencer = Sequencer(
            core.ledger, max_batch=config.batch_max_records, max_wait_ms=config.batch_max_wait_ms
        )
        self.compliance = ComplianceRuntime(core, self.metrics.registry)
        core.erasure_observers.append(self._count_erased)
        self.retention = _retention_eraser(core) if config.retention_enabled else None
        self.submit = SubmitService(
            core.store,
            core.directory,
            self.sequencer,
            origin=config.log_origin,
            clock=clock,
            deadline_rules=self.compliance.deadline_rules,
            intake=config.intake_rules,
            on_outcome=self.metrics.record_outcome,
            policies=core.policies,
        )
        self.query = QueryService(core.store, clock=clock, policies=core.policies)
        self.audit = AuditService(
            core.store,
            core.directory,
            clock=clock,
            clock_skew=config.intake_rules.clock_skew,
        )
        self.public_feed: PublicFeed | None = None
        self.public_server: PublicServer | None = None
        self.public_port = 0
        if config.public_address:
            self._build_public(monotonic)
        self.access_log = AccessLog(
            AccessStore(core.engine),
            key=core.key.derive_secret(ACCESS_DIGEST_INFO),
            retention_days=config.access_log_retention_days,
            daily_quota=config.access_log_daily_quota,
            clock=clock,
        )
        self.access_log.convert_legacy()
        self._access_pruned = 0.0
        self.checkpoints = CheckpointBeacon()
        self.state_metrics = StateMetrics(
            self.metrics.registry,
            certificates={
                "gateway": config.cert_file,
                "ca": config.ca_file,
                **{f"peer-ca-{p.name}": p.ca_file for p in config.peers},
            },
        )
        self._state_refreshed = 0.0
        self.scrub_metrics = ScrubMetrics(
            self.metrics.registry,
            rate_entries_per_s=config.scrub_rate_entries_per_s,
            damage=core.store.damage,
        )
        self.scrubber = (
            Scrubber(
                core.integrity,
                ScrubSettings(config.scrub_rate_entries_per_s),
                observer=self.scrub_metrics,
                clock=clock,
            )
            if config.scrub_rate_entries_per_s > 0
            else None
        )
        self.replication = Replication([self._puller(peer) for peer in config.peers if peer.pull])
        self.limits = Limits(
            LimitSettings(
                rate_per_s=config.rate_limit_per_member_rps,
                burst=config.rate_limit_burst,
                max_streams=config.max_streams_per_member,
                stream_idle_timeout_s=config.stream_idle_timeout_s,
                max_streams_total=config.max_streams,
            ),
            on_limited=self.metrics.observe_rate_limited,
            clock=monotonic,
        )
        self.server = self._build_server()
        self.port = 0
        self._ticker = threading.Thread(target=self._tick_loop, name="ticker", daemon=True)

    def _build_public(self, monotonic: Callable[[], float]) -> None:
        cfg, core = self.config, self.core
        self.public_feed = PublicFeed(
            core.store,
            self.audit,
            trust_domain=cfg.trust_domain,
            log_verifier=core.note_signer.verifier(),
            clock=core.clock,
            interval_s=cfg.checkpoint_interval_s,
        )
        self.public_metrics = PublicMetrics(self.metrics.registry)
        settings = PublicSettings(
            max_page=cfg.public_max_page,
            default_page=min(100, cfg.public_max_page),
            rate=RateSettings(cfg.public_rate_per_client_rps, cfg.public_rate_burst),
        )
        self.public_server = PublicServer(
            build_app(self.public_feed, settings, observer=self.public_metrics, clock=monotonic),
            ServeSettings(
                cfg.public_address,
                forwarded_allow_ips=cfg.public_forwarded_allow_ips,
                max_connections=cfg.public_max_connections,
                shutdown_grace_s=cfg.shutdown_grace_s,
            ),
        )

    def _puller(self, peer: PeerConfig) -> PeerPuller:
        cfg, core = self.config, self.core

        def connect() -> PeerClient:
            return GrpcPeerClient.from_files(
                peer.address,
                peer_ca_file=peer.ca_file,
                cert_file=cfg.cert_file,
                key_file=cfg.key_file,
                max_message_bytes=cfg.max_message_bytes,
            )

        return PeerPuller(
            PeerLog(peer.member_id, peer.log_origin, NoteVerifier.from_vkey(peer.log_vkey)),
            connect,
            ledger=core.ledger,
            directory=core.directory,
            store=core.store,
            anchors=core.anchors,
            cosigner=CosignatureSigner(cfg.member_id, core.key),
            settings=ReplicationSettings(
                backoff_initial_s=cfg.federation_backoff_initial_s,
                backoff_max_s=cfg.federation_backoff_max_s,
                batch_max_entries=cfg.federation_batch_max_entries,
            ),
            clock=self.core.clock,
        )

    def _build_server(self) -> GatewayServer:
        cfg = self.config
        roots = Path(cfg.ca_file).read_bytes() + b"".join(p.ca_file.read_bytes() for p in cfg.peers)
        return GatewayServer(
            ServerSettings(
                listen_address=cfg.listen_address,
                worker_threads=cfg.worker_threads,
                max_message_bytes=cfg.max_message_bytes,
                cert_chain=cfg.cert_file.read_bytes(),
                private_key=cfg.key_file.read_bytes(),
                client_roots=roots,
                tls_handshake_timeout_s=cfg.tls_handshake_timeout_s,
                connection_idle_timeout_s=cfg.connection_idle_timeout_s,
                connection_max_age_s=cfg.connection_max_age_s,
                connection_max_age_grace_s=cfg.connection_max_age_grace_s,
            ),
            rules=StreamRules(
                max_age_s=cfg.stream_max_age_s,
                uncounted=frozenset({cfg.member_id, *(p.member_id for p in cfg.peers)}),
            ),
            admission=_Admission(cfg, self.core.directory, self._crls),
            observer=self.metrics,
            limits=self.limits,
            exchange=ExchangeServicer(
                self.submit,
                self.query,
                self.core.store,
                self.core.ledger,
                max_subjects=cfg.max_subjects_per_check,
                max_stream_records=cfg.max_stream_records,
                max_batch_records=cfg.max_submit_batch_records,
                stopping=self._stopping,
                limits=self.limits,
                access_log=self.access_log,
            ),
            audit=AuditLogServicer(self.audit, self.access_log),
            federation=FederationServicer(
                ReplicationFeed(self.core.store, self.checkpoints), stopping=self._stopping
            ),
            extra=[(COMPLIANCE_SERVICE, self.compliance.add_to_server)],
        )

    def start(self, *, serve_metrics: bool = True) -> Gateway:
        ensure_open_files(self.config.min_open_files)
        self.sequencer.start()
        self._tick()
        self.port = self.server.start()
        if serve_metrics:
            cfg = self.config
            self._stop_metrics = self.metrics.serve(
                cfg.metrics_address,
                threads=cfg.metrics_threads,
                timeout_s=cfg.metrics_timeout_s,
                max_connections=cfg.metrics_max_connections,
            )
        if self.public_feed is not None and self.public_server is not None:
            self.public_feed.start()
            self.public_port = self.public_server.start()
        self._ticker.start()
        self.replication.start()
        if self.scrubber is not None:
            self.scrubber.start()
        logger.info(
            "gateway %s serving on port %s (log %s, %s entries)",
            self.config.member_id,
            self.port,
            self.config.log_origin,
            self.core.ledger.size,
        )
        return self

    @property
    def metrics_port(self) -> int:
        return int(getattr(self.metrics, "port", 0))

    def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        self._stopping.set()
        if self.scrubber is not None:
            self.scrubber.stop()
        self.replication.stop()
        self.checkpoints.notify()
        self.server.stop(grace)
        if self.public_server is not None:
            self.public_server.stop()
        if self.public_feed is not None:
            self.public_feed.stop()
        self.sequencer.stop()
        self.access_log.close()
        try:
            self._tick()  # a last checkpoint over everything appended
        except Exception:
            logger.exception("the last periodic round failed; shutting down anyway")
        if callable(self._stop_metrics):
            self._stop_metrics()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        self.core.close()

    def wait(self) -> None:
        self.server.wait()

    def _tick_loop(self) -> None:
        # A fixed rate, not a fixed pause: the round's own work (escalation, gauges)
        # must not stretch the checkpoint interval, which is the floor of replication lag.
        interval = self.config.checkpoint_interval_s
        next_at = time.monotonic() + interval
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            try:
                self._tick()
            except Exception:
                logger.exception("periodic work failed; retrying next interval")
            # After a round that overran, the next one starts at once (no burst of missed ones).
            next_at = max(next_at + interval, time.monotonic())

    def _tick(self) -> None:
        """Periodic work: notice appends by other processes, sign a checkpoint, reload the
        CRL when its interval has passed."""
        core = self.core
        core.ledger.refresh()
        if core.store.wal_pending:
            # An erasure's WAL truncation that a reader or writer kept busy.
            core.store.truncate_wal()
        # Findings of other replicas' scrubbers, and ranges cleared by check-log.
        core.integrity.load_damage()
        self.scrub_metrics.refresh()
        self.compliance.tick()
        self.run_retention()
        cp = core.ledger.checkpoint(core.note_signer, self.config.log_origin)
        latest = cp or core.store.latest_checkpoint()
        self.metrics.log_size.set(core.ledger.size)
        if latest is not None:
            self.metrics.checkpoint_timestamp.set(latest.signed_at.timestamp())
            self.state_metrics.checkpoint_size.set(latest.tree_size)
        if cp is not None:
            self.checkpoints.notify()
            if self.public_feed is not None:
                self.public_feed.wake()
        if self.public_feed is not None:
            self.public_metrics.entries.set(len(self.public_feed))
        now = self.core.clock()
        for status in self.replication.status():
            self.metrics.observe_peer(
                status.peer,
                entries_behind=status.entries_behind,
                seconds_behind=status.seconds_behind(now),
                last_success=(
                    status.last_success_at.timestamp() if status.last_success_at else None
                ),
                failures=status.consecutive_failures,
            )
        self._reload_crls()
        if time.monotonic() - self._access_pruned >= ACCESS_LOG_PRUNE_INTERVAL_S:
            self._access_pruned = time.monotonic()
            self.access_log.prune()
        # Group-bys over the projections: refresh at most every STATE_METRICS_INTERVAL_S.
        if time.monotonic() - self._state_refreshed >= STATE_METRICS_INTERVAL_S:
            self._state_refreshed = time.monotonic()
            self.state_metrics.refresh(core.store, now)

    def run_retention(self) -> None:
        """Erase what passed its retention (when on), then recount what is overdue if
        a pass worked or failed. On the ticker; a failure is retried next round."""
        retention = self.retention
        if retention is None:
            return
        now = self.core.clock()
        try:
            counted = retention.run(now).passed
        except Exception:
            logger.exception("retention failed; retrying next round")
            counted = True  # what the failed round left is overdue: the gauge shows it
        if counted:
            try:
                overdue = retention.overdue(now)
                self.metrics.set_retention_overdue({k.label: n for k, n in overdue.items()})
            except Exception:
                logger.exception("retention: the overdue records could not be counted")

    def _count_erased(self, erasures: Sequence[tuple[str, Erasure]]) -> None:
        records = RetentionStore(self.core.engine)
        for erasure_id, erasure in erasures:
            erased = records.erased_by(erasure_id, erasure.record_ids)
            self.metrics.observe_erased(erasure.basis, erased)

    def _reload_crls(self) -> None:
        """Re-read each CRL file (ours and every peer's), if it changed, once every
        ``crl_reload_interval_s``."""
        now = self._monotonic()
        if now - self._crl_checked < self.config.crl_reload_interval_s:
            return
        self._crl_checked = now
        for crl in self._crls.values():
            try:
                crl.reload_if_changed()
            except ConfigError as e:  # e.g. its folder became a file: not missing, unreadable
                logger.warning(
                    "%s; keeping the %d revoked serials already loaded",
                    e,
                    len(crl.revoked_serials),
                )


def _retention_eraser(core: Core) -> RetentionEraser:
    config = core.config
    settings = RetentionSettings(
        days={kind: int(getattr(config, kind.setting)) for kind in RecordKind},
        max_records=config.retention_max_records_per_erasure,
        max_erasures=config.retention_max_erasures_per_tick,
    )
    return RetentionEraser(
        core.store,
        core.ledger,
        core.key,
        settings,
        gateway_id=config.member_id,
        origin=config.log_origin,
    )


def settle_heap() -> None:
    """For a process that serves one gateway until it exits (``alliance-gateway serve``):
    move the objects that live as long as the process (modules, generated protobuf
    classes, the gateway's own structures) out of the cyclic garbage collector's view,
    so its full collections stop rescanning them on every request burst."""
    gc.collect()
    gc.freeze()


def gateway_member_id(trust_domain: str, name: str) -> str:
    return str(MemberId.parse(f"spiffe://{trust_domain}/gateway/{name}"))


__all__ = ["Core", "Gateway", "gateway_member_id"]
