"""Alliance policy records on real gateways: `policy set/show`, replication to a peer,
and who may sign one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from gwtest import submit
from test_federation import _toml, eventually, make_region, mesh, running

from gateway.core.statements import AlliancePolicy
from gateway.ops.cli import main as cli_main


def test_policy_set_replicates_and_only_the_gateway_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zj, gd = make_region(tmp_path, "zj", "330100"), make_region(tmp_path, "gd", "440300")
    configs = mesh((zj, gd), [f"sqlite:///{tmp_path / n}.db" for n in ("zj", "gd")])
    with running(configs, (zj, gd)) as (a, b):
        config_file = tmp_path / "zj.toml"
        config_file.write_text(_toml(configs[0]), encoding="utf-8")
        policy_file = tmp_path / "policy.toml"
        policy_file.write_text(
            'units_accepting_platform_reports = ["33", "44"]\ndispute_decision_working_days = 5\n',
            encoding="utf-8",
        )
        # The operator signs it while the gateway runs (both append under the log lock).
        assert cli_main(["policy", "set", "--config", str(config_file), str(policy_file)]) == 0
        assert "dispute_decision_working_days = 5" in capsys.readouterr().out
        a.core.ledger.refresh()  # the running gateway picks up the CLI's append

        def held(gw: object) -> AlliancePolicy | None:
            return gw.core.policies.current(zj.trust_domain)  # type: ignore[attr-defined, no-any-return]

        eventually(lambda: held(a) is not None, "ZJ holds its policy")
        eventually(lambda: held(b) == held(a), "GD holds ZJ's policy, the same")
        mine = held(a)
        assert mine is not None and mine.issuer == zj.alliance.gateway_id
        assert mine.units_accepting_platform_reports == ("33", "44")
        assert b.core.policies.current(gd.trust_domain) is None  # GD signed none

        assert cli_main(["policy", "show", "--config", str(config_file)]) == 0
        shown = capsys.readouterr().out
        assert "units_accepting_platform_reports = 33, 44" in shown

        # A member cannot submit a policy: only the alliance's gateway signs one.
        forged = AlliancePolicy(
            issuer=zj.platform.member_id.replace("/platform/", "/gateway/"),
            issued_at=datetime.now(UTC),
        )
        with zj.platform.channel(a.port) as ch, pytest.raises(grpc.RpcError) as err:
            submit(ch, zj.platform.sign(forged))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # A bad policy file is refused with the field named, and nothing is signed.
    bad = tmp_path / "bad.toml"
    bad.write_text('units_accepting_platform_reports = ["99"]\n', encoding="utf-8")
    assert cli_main(["policy", "set", "--config", str(config_file), str(bad)]) == 2
    assert "'99' is not a 2-digit reporting unit" in capsys.readouterr().err
