"""The container health check (``python -m gateway.ops.healthcheck``, used by compose,
the Dockerfile and the Kubernetes probes) and the mTLS probe behind it
(``gateway/transport/health_probe.py``), against real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from gwtest import Alliance, running_gateway
from test_federation import reserve_port

from gateway.errors import FederationError
from gateway.ops import healthcheck
from gateway.ops.config import Config
from gateway.transport.health_probe import probe


def _toml(config: Config, listen_address: str) -> str:
    values = {
        "trust_domain": config.trust_domain,
        "gateway_name": config.gateway_name,
        "region_code": config.region_code,
        "database_url": config.database_url,
        "listen_address": listen_address,
        "ca_file": config.ca_file,
        "cert_file": config.cert_file,
        "key_file": config.key_file,
        "signing_key_file": config.signing_key_file,
    }
    return "".join(f'{k} = "{v}"\n' for k, v in values.items())


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    return Alliance(tmp_path / "zj", "zj.alliance.test")


@pytest.fixture
def serving(alliance: Alliance) -> Iterator[tuple[Config, int]]:
    config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}")
    with running_gateway(config) as gw:
        yield config, gw.port


def test_a_serving_gateway_is_healthy(
    serving: tuple[Config, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, port = serving
    path = tmp_path / "gateway.toml"
    # A container listens on every interface; the check then asks 127.0.0.1.
    path.write_text(_toml(config, f"0.0.0.0:{port}"))
    assert healthcheck.main(["--config", str(path)]) == 0
    assert capsys.readouterr().out == "serving\n"

    # As compose and Kubernetes run it: its own process, exit status 0.
    done = subprocess.run(
        [sys.executable, "-m", "gateway.ops.healthcheck", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "serving\n"), done.stderr


def test_a_gateway_that_does_not_answer_is_unhealthy(
    alliance: Alliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}")
    path = tmp_path / "gateway.toml"
    path.write_text(_toml(config, f"127.0.0.1:{reserve_port()}"))  # nothing listens
    assert healthcheck.main(["--config", str(path), "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: 127.0.0.1:") and "UNAVAILABLE" in err


def test_an_unreadable_configuration_is_unhealthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert healthcheck.main(["--config", str(tmp_path / "absent.toml")]) == 1
    assert "configuration file not found" in capsys.readouterr().err


def test_the_probe_names_an_unknown_service(serving: tuple[Config, int]) -> None:
    config, port = serving
    with pytest.raises(FederationError, match="NOT_FOUND"):
        probe(
            f"127.0.0.1:{port}",
            ca_file=config.ca_file,
            cert_file=config.cert_file,
            key_file=config.key_file,
            timeout_s=5,
            service="no.such.Service",
        )


def test_a_server_reporting_not_serving_is_unhealthy(
    alliance: Alliance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that answers the health service with NOT_SERVING (as the gateway does
    while it drains) fails the check, with exit status 1."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", alliance.server_credentials())
    server.start()
    try:
        config = alliance.config(f"sqlite:///{alliance.root / 'gateway.db'}")
        path = tmp_path / "gateway.toml"
        path.write_text(_toml(config, f"127.0.0.1:{port}"))
        assert healthcheck.main(["--config", str(path)]) == 1
        assert capsys.readouterr().out == "not serving\n"
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert healthcheck.check(path) is True
    finally:
        server.stop(0).wait()
