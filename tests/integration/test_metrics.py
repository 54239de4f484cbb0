"""The metrics endpoint of a running gateway: parsed with the Prometheus text parser,
series move as records flow, promtool accepts the exposition, and every metric the
alert rules and the dashboard use is exported."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from gwtest import USCC, Alliance, confirmation, listing, running_gateway, submit
from prometheus_client.parser import text_string_to_metric_families

from gateway.core import dsse

ROOT = Path(__file__).resolve().parents[2]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(
    port: int, predicate: object, timeout_s: float = 15.0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = _samples(_scrape(port))
        if predicate(samples) or time.monotonic() > deadline:  # type: ignore[operator]
            return samples
        time.sleep(0.2)


def test_metrics_move_as_records_flow(tmp_path: Path) -> None:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = a.member("authority", "zj-amr", region="330000")
    shop = a.member("platform", "shop-a")
    config = a.config(f"sqlite:///{tmp_path / 'gw.db'}")
    with running_gateway(config, register=(amr, shop)) as gw:
        port = gw.metrics_port
        before = _samples(_scrape(port))
        assert _value(before, "alliance_records_accepted_total", type="listing") == 0
        expiry = _value(
            before, "alliance_certificate_expiry_timestamp_seconds", certificate="gateway"
        )
        assert expiry - time.time() > 300 * 86400  # issued for 397 days

        with amr.channel(gw.port) as ch:
            listed = submit(ch, amr.sign(listing(amr)))
            submit(ch, amr.sign(listing(amr)))  # a duplicate
            bad = dsse.sign(amr.sign(listing(amr)).payload_type, b"\x01", amr.signing_key)
            with pytest.raises(grpc.RpcError):
                submit(ch, bad)
        with shop.channel(gw.port) as ch:
            submit(ch, shop.sign(confirmation(shop, listed.record_id)))
        log_size = gw.core.store.log_size()

        after = _wait_for(
            port,
            lambda s: (
                _value(s, "alliance_checkpoint_tree_size") == log_size
                and _value(
                    s, "alliance_listings", list="blacklist", conduct="fake_transactions", unit="33"
                )
                == 1
            ),
        )
        assert _value(after, "alliance_records_accepted_total", type="listing") == 1
        assert _value(after, "alliance_records_duplicate_total", type="listing") == 1
        assert (
            _value(
                after, "alliance_records_rejected_total", type="listing", reason="invalid_record"
            )
            == 1
        )
        assert _value(after, "alliance_records_accepted_total", type="sanctionconfirmation") == 1
        assert _value(after, "alliance_log_entries") == log_size
        assert _value(after, "alliance_checkpoint_tree_size") == log_size
        assert (
            _value(
                after, "alliance_listings", list="blacklist", conduct="fake_transactions", unit="33"
            )
            == 1
        )
        assert (
            _value(after, "alliance_sanctions_confirmed", measure="close_store", action="applied")
            == 1
        )
        ok = "/alliance.v1.Exchange/SubmitRecord"
        assert _value(after, "alliance_rpcs_total", method=ok, code="OK") == 3
        assert _value(after, "alliance_rpcs_total", method=ok, code="INVALID_ARGUMENT") == 1
        assert _value(after, "alliance_rpc_duration_seconds_count", method=ok) == 4

        exposition = _scrape(port)
        # No member, seller or record id ever becomes a label value.
        for secret in (listed.record_id, USCC[0], amr.member_id, shop.member_id):
            assert secret not in exposition
        _check_rules_and_dashboard_use_exported_metrics(exposition)
        _promtool_check(exposition, tmp_path)


def _metric_names(exposition: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


# Series that exist only once federation peers are configured or a report is scheduled.
_CONDITIONAL = {
    "alliance_federation_entries_behind",
    "alliance_federation_seconds_behind",
    "alliance_federation_consecutive_failures",
}


def _check_rules_and_dashboard_use_exported_metrics(exposition: str) -> None:
    exported = _metric_names(exposition) | _CONDITIONAL
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alliance-rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/alliance-gateway.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\balliance_[a-z_]+", e)}
    missing = sorted(used - exported)
    assert not missing, f"rules/dashboard use metrics the gateway does not export: {missing}"


def _promtool_check(exposition: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
