"""Assemble and run one gateway: storage, log, directory, sequencer, gRPC server.

``Gateway(config).start()`` binds (port 0 allowed), ``.port`` tells where, and
``.stop()`` shuts down gracefully: the server stops taking calls, in-flight calls get
the grace period, the sequencer finishes what it was handed, the database closes.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from certs.pki import RevocationList
from gateway.core.crypto import VerifyingKey, load_signing_key
from gateway.core.identifiers import MemberId
from gateway.core.notes import NoteSigner, NoteVerifier
from gateway.core.statements import PAYLOAD_TYPES, MemberRecord
from gateway.errors import ConfigError, PermissionError
from gateway.ops.config import Config
from gateway.ops.metrics import GatewayMetrics
from gateway.pb.alliance.v1 import audit_pb2, audit_pb2_grpc, exchange_pb2, exchange_pb2_grpc
from gateway.service.audit import AuditService
from gateway.service.directory import Directory
from gateway.service.ledger import Clock, Ledger, utc_now
from gateway.service.members import MemberAdmin
from gateway.service.query import QueryService
from gateway.service.sequencer import Sequencer
from gateway.service.submit import SubmitService
from gateway.storage import SqlStore, check_schema, make_engine, migrate
from gateway.storage.db import current_revision
from gateway.transport.audit import AuditLogServicer
from gateway.transport.exchange import ExchangeServicer
from gateway.transport.identity import Caller
from gateway.transport.interceptor import AuthInterceptor

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditLog"].full_name,
)


class Core:
    """Everything but the network: usable by the operator CLI without serving."""

    def __init__(
        self, config: Config, *, clock: Clock = utc_now, auto_migrate: bool = True
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine = make_engine(config.database_url)
        if auto_migrate and current_revision(self.engine) is None:
            logger.info("new database: creating the schema")
            migrate(self.engine)
        check_schema(self.engine)
        self.store = SqlStore(self.engine)
        self.key = load_signing_key(config.signing_key_file)
        self.note_signer = NoteSigner(config.log_origin, self.key)
        anchors = {config.member_id: self.key.public_key()}
        for peer in config.peers:
            verifier = NoteVerifier.from_vkey(peer.log_vkey)
            anchors[f"spiffe://{peer.trust_domain}/gateway/{peer.name}"] = VerifyingKey.from_raw(
                verifier.key.raw
            )
        self.directory = Directory(anchors)
        self._load_members()
        self.ledger = Ledger(
            self.store, on_members=self.directory.apply, on_resync=self._load_members, clock=clock
        )
        self.ledger.verify_against_checkpoint()
        self.members = MemberAdmin(
            self.ledger,
            self.directory,
            self.key,
            gateway_id=config.member_id,
            origin=config.log_origin,
            clock=clock,
        )

    def _load_members(self) -> None:
        rows = self.store.records_of_types([PAYLOAD_TYPES[MemberRecord]])
        self.directory.reload((r.record_id, r.payload_type, r.payload) for r in rows)

    def close(self) -> None:
        self.engine.dispose()


class _Admission:
    """Members of our trust domain in good standing, and configured peer gateways."""

    def __init__(self, config: Config, directory: Directory, crl: RevocationList | None) -> None:
        self._trust_domain = config.trust_domain
        self._own = config.member_id
        self._peers = {f"spiffe://{p.trust_domain}/gateway/{p.name}" for p in config.peers}
        self._directory = directory
        self._crl = crl

    def admit(self, caller: Caller) -> None:
        if self._crl is not None and self._crl.is_revoked(caller.serial):
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
        self._directory.require_active(caller.member_id)


class Gateway:
    def __init__(self, config: Config, *, clock: Clock = utc_now) -> None:
        config.check_files()
        self.config = config
        self.core = Core(config, clock=clock)
        self.metrics = GatewayMetrics()
        self.metrics.build.info({"version": "0.1.0"})
        self._stopping = threading.Event()
        self._stop_metrics: object = None
        self._crl = (
            RevocationList(config.crl_file, config.ca_file) if config.crl_file is not None else None
        )
        core = self.core
        core.members.ensure_self(config.region_code)
        self.sequencer = Sequencer(
            core.ledger, max_batch=config.batch_max_records, max_wait_ms=config.batch_max_wait_ms
        )
        self.submit = SubmitService(
            core.store, core.directory, self.sequencer, origin=config.log_origin, clock=clock
        )
        self.query = QueryService(core.store, clock=clock)
        self.audit = AuditService(core.store, core.directory, clock=clock)
        self.server = self._build_server()
        self.port = 0
        self._ticker = threading.Thread(target=self._tick_loop, name="ticker", daemon=True)

    def _build_server(self) -> grpc.Server:
        cfg = self.config
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
        ]
        admission = _Admission(cfg, self.core.directory, self._crl)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.worker_threads, thread_name_prefix="rpc"),
            interceptors=[AuthInterceptor(admission, self.metrics)],
            options=options,
            maximum_concurrent_rpcs=cfg.worker_threads * 8,
        )
        exchange_pb2_grpc.add_ExchangeServicer_to_server(
            ExchangeServicer(
                self.submit,
                self.query,
                self.core.store,
                self.core.ledger,
                max_subjects=cfg.max_subjects_per_check,
                max_stream_records=cfg.max_stream_records,
                stopping=self._stopping,
            ),
            server,
        )
        audit_pb2_grpc.add_AuditLogServicer_to_server(AuditLogServicer(self.audit), server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        roots = Path(cfg.ca_file).read_bytes() + b"".join(p.ca_file.read_bytes() for p in cfg.peers)
        credentials = grpc.ssl_server_credentials(
            [(cfg.key_file.read_bytes(), cfg.cert_file.read_bytes())],
            root_certificates=roots,
            require_client_auth=True,
        )
        self._bind_address = cfg.listen_address
        self._credentials = credentials
        return server

    def start(self, *, serve_metrics: bool = True) -> Gateway:
        self.sequencer.start()
        self._tick()
        self.port = self.server.add_secure_port(self._bind_address, self._credentials)
        if self.port == 0:
            raise ConfigError(f"listen_address: cannot bind {self._bind_address}")
        self.server.start()
        if serve_metrics:
            self._stop_metrics = self.metrics.serve(self.config.metrics_address)
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._ticker.start()
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
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.sequencer.stop()
        self._tick()
        if callable(self._stop_metrics):
            self._stop_metrics()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        self.core.close()

    def wait(self) -> None:
        self.server.wait_for_termination()

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self.config.checkpoint_interval_s):
            try:
                self._tick()
            except Exception:
                logger.exception("periodic work failed; retrying next interval")

    def _tick(self) -> None:
        """Periodic work: notice appends by other processes, sign a checkpoint, reload CRL."""
        core = self.core
        core.ledger.refresh()
        cp = core.ledger.checkpoint(core.note_signer, self.config.log_origin)
        latest = cp or core.store.latest_checkpoint()
        self.metrics.log_size.set(core.ledger.size)
        if latest is not None:
            self.metrics.checkpoint_timestamp.set(latest.signed_at.timestamp())
        if self._crl is not None:
            self._crl.reload_if_changed()


def gateway_member_id(trust_domain: str, name: str) -> str:
    return str(MemberId.parse(f"spiffe://{trust_domain}/gateway/{name}"))


__all__ = ["Core", "Gateway", "gateway_member_id"]
