"""The gateway states its protocol revision in its health answers; the client and the
CLI read it and warn on a mismatch (docs/PROTOCOL.md §5.1). Real gateways, real mTLS."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from gwtest import USCC, Alliance, zhejiang
from gwtest import running_gateway as gateway_for
from test_client import _free_port, write_profile

from clients import AllianceClient, ClientError, RetryPolicy, __version__, company_subject, version
from clients.cli import main
from clients.profile import load_profile
from gateway.protocol import CURRENT, ProtocolVersion

NEWER = ProtocolVersion(CURRENT.package, CURRENT.revision + 1)


@dataclass
class Site:
    alliance: Alliance
    platform: Path
    log_origin: str
    address: str


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    alliance = zhejiang(tmp_path / "zj")
    shop = alliance.members["shop-a"]
    config = alliance.config(database_url)
    with gateway_for(config, register=(shop,)) as gw:
        address = f"127.0.0.1:{gw.port}"
        yield Site(
            alliance, write_profile(alliance, shop, address, config.log_origin),
            config.log_origin, address,
        )  # fmt: skip


def test_the_gateway_states_its_protocol_in_every_health_answer(site: Site) -> None:
    shop = site.alliance.members["shop-a"]
    with grpc.secure_channel(site.address, shop.credentials()) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply, call = stub.Check.with_call(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stated = [v for k, v in call.initial_metadata() if k == "alliance-protocol"]
        assert stated == [str(CURRENT)]

        watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=10)
        try:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            stated = [v for k, v in watch.initial_metadata() if k == "alliance-protocol"]
            assert stated == [str(CURRENT)]
        finally:
            watch.cancel()


def test_any_member_of_the_alliance_may_ask_even_unregistered(site: Site) -> None:
    stranger = site.alliance.member("platform", "not-registered-yet")
    path = write_profile(site.alliance, stranger, site.address, site.log_origin)
    with AllianceClient(load_profile(path)) as client:
        check = client.gateway_version()
        assert check.matches and check.serving and check.gateway == CURRENT
        # The same member is refused everything else.
        with pytest.raises(ClientError) as refused:
            client.check([company_subject(USCC[0])])
        assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED


def test_the_cli_is_silent_when_both_speak_the_same(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--profile", str(site.platform), "check", USCC[0]]) == 0
    out, err = capsys.readouterr()
    assert "not listed" in out and err == ""
    assert main(["--profile", str(site.platform), "version"]) == 0
    out, err = capsys.readouterr()
    assert f"serving, speaks {CURRENT}" in out and err == ""


def test_a_newer_client_warns_and_still_works(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client of the next revision (simulated) against this gateway."""
    monkeypatch.setattr(version, "PROTOCOL", NEWER)
    assert main(["--profile", str(site.platform), "check", USCC[0]]) == 0
    out, err = capsys.readouterr()
    assert "not listed" in out
    assert err.startswith(
        f"warning: the gateway speaks {CURRENT}, older than this client's {NEWER}"
    )
    assert "\nhint: " in err and err.count("warning:") == 1

    assert main(["--profile", str(site.platform), "version"]) == 1
    out, err = capsys.readouterr()
    assert f"client  alliance-client {__version__}, speaks {NEWER}" in out
    assert f"speaks {CURRENT}" in out and err.startswith("warning: ")

    # The compliance commands ask too.
    main(["--profile", str(site.platform), "compliance", "schedule"])
    _, err = capsys.readouterr()
    assert f"warning: the gateway speaks {CURRENT}" in err


def test_a_gateway_that_states_nothing_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gRPC server with the stock health service (as before revisions) and the
    alliance's gateway certificate."""
    alliance = zhejiang(tmp_path / "zj")
    shop = alliance.members["shop-a"]
    gw_dir = alliance.gw_dir
    credentials = grpc.ssl_server_credentials(
        [((gw_dir / "gw-key.pem").read_bytes(), (gw_dir / "gw.pem").read_bytes())],
        root_certificates=alliance.ca.read_bytes(),
        require_client_auth=True,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        path = write_profile(alliance, shop, f"127.0.0.1:{port}", "zj.alliance.test/log")
        assert main(["--profile", str(path), "version"]) == 1
        out, err = capsys.readouterr()
        assert "speaks (not stated)" in out
        assert err.startswith("warning: the gateway did not state which protocol it speaks")
    finally:
        server.stop(0)


def test_an_unreachable_gateway_is_the_commands_own_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alliance = zhejiang(tmp_path / "zj")
    shop = alliance.members["shop-a"]
    path = write_profile(alliance, shop, f"127.0.0.1:{_free_port()}", "zj.alliance.test/log")
    assert main(["--profile", str(path), "--retries", "0", "check", USCC[0]]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: cannot reach the gateway") and "warning:" not in err
    assert main(["--profile", str(path), "--retries", "0", "version"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: cannot reach the gateway") and "Traceback" not in err
    client = AllianceClient(load_profile(path), retry=RetryPolicy(max_attempts=1))
    with client, pytest.raises(ClientError) as unreachable:
        client.gateway_version()
    assert unreachable.value.code is grpc.StatusCode.UNAVAILABLE
