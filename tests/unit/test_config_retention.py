"""Retention settings (issue 18 item 6): their defaults, environment overrides, every
rejection with the setting it names, and the day retention is judged on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.core.statements import MAX_ERASED_RECORDS, Erasure, ErasureBasis
from gateway.errors import ConfigError
from gateway.ops.config import RETENTION_DAYS_SETTINGS, Config, config_from_mapping
from gateway.service.retention import RecordKind, RetentionSettings, legal_basis, retention_day


def _config(tmp_path: Path, env: dict[str, str] | None = None, /, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "trust_domain": "zj.alliance.test",
        "gateway_name": "gw",
        "region_code": "330100",
        "ca_file": "ca.pem",
        "cert_file": "gw.pem",
        "key_file": "gw-key.pem",
        "signing_key_file": "signing-key.pem",
    }
    raw.update(overrides)
    return config_from_mapping(raw, base_dir=tmp_path, env=env or {})


def test_defaults_keep_every_kind_three_years_after_closing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.retention_enabled is True
    assert [getattr(config, name) for name in RETENTION_DAYS_SETTINGS] == [1096] * 4
    assert [k.setting for k in RecordKind] == list(RETENTION_DAYS_SETTINGS)
    assert config.retention_max_records_per_erasure == MAX_ERASED_RECORDS
    assert config.retention_max_erasures_per_tick == 4


def test_the_environment_turns_it_off_and_sets_days(tmp_path: Path) -> None:
    env = {"ALLIANCE_RETENTION_ENABLED": "False", "ALLIANCE_RETENTION_LISTING_DAYS": "400"}
    config = _config(tmp_path, env, retention_enabled=True)
    assert config.retention_enabled is False and config.retention_listing_days == 400
    on = _config(tmp_path, {"ALLIANCE_RETENTION_ENABLED": " true "}, retention_enabled=False)
    assert on.retention_enabled is True


@pytest.mark.parametrize("name", RETENTION_DAYS_SETTINGS)
@pytest.mark.parametrize("days", [0, -1, 36_526])
def test_days_out_of_range_are_refused(tmp_path: Path, name: str, days: int) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}: must be between 1 and 36525 days"):
        _config(tmp_path, **{name: days})


def test_days_that_are_not_a_number_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^retention_government_measure_days: 'ten'"):
        _config(tmp_path, retention_government_measure_days="ten")


@pytest.mark.parametrize("value", ["yes", "1", 1, "", None])
def test_enabled_must_be_true_or_false(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^retention_enabled: .* is not true or false"):
        _config(tmp_path, retention_enabled=value)


@pytest.mark.parametrize("records", [0, MAX_ERASED_RECORDS + 1])
def test_records_per_erasure_within_what_an_erasure_may_name(tmp_path: Path, records: int) -> None:
    with pytest.raises(ConfigError, match=r"^retention_max_records_per_erasure: must be between"):
        _config(tmp_path, retention_max_records_per_erasure=records)


def test_at_least_one_erasure_a_round(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^retention_max_erasures_per_tick: must be at least 1"):
        _config(tmp_path, retention_max_erasures_per_tick=0)


_DAYS = {kind: 30 for kind in RecordKind}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"days": {RecordKind.LISTING: 30}}, "no days for retention_status_change_days"),
        ({"days": {**_DAYS, RecordKind.GOVERNMENT_MEASURE: 0}}, "retention_government_measure"),
        ({"max_records": MAX_ERASED_RECORDS + 1}, "records per erasure"),
        ({"max_records": 0}, "records per erasure"),
        ({"max_erasures": 0}, "at least one erasure"),
        ({"index_batch": 0}, "at least one erasure and one record"),
    ],
)
def test_settings_check_themselves(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"days": _DAYS, **overrides}
    with pytest.raises(ConfigError, match=message):
        RetentionSettings(**values)


@pytest.mark.parametrize(
    ("now", "day"),
    [
        # 00:00 in China Standard Time is 16:00 UTC the day before.
        (datetime(2026, 7, 10, 16, tzinfo=UTC), datetime(2026, 7, 10, 16, tzinfo=UTC)),
        (datetime(2026, 7, 10, 15, 59, 59, tzinfo=UTC), datetime(2026, 7, 9, 16, tzinfo=UTC)),
        (datetime(2026, 7, 11, 12, tzinfo=UTC), datetime(2026, 7, 10, 16, tzinfo=UTC)),
    ],
)
def test_retention_is_judged_at_the_start_of_the_day_in_china(now: datetime, day: datetime) -> None:
    assert retention_day(now) == day and retention_day(now).tzinfo is UTC


def test_the_legal_basis_names_the_setting_and_fits_an_erasure() -> None:
    for kind in RecordKind:
        text = legal_basis(kind, 1096)
        assert f"({kind.setting} = 1096;" in text
        Erasure(
            issuer="spiffe://zj.alliance.test/gateway/gw",
            record_ids=("ab" * 32,),
            basis=ErasureBasis.RETENTION_ENDED,
            legal_basis=text,
            effective_at=datetime(2026, 7, 10, 16, tzinfo=UTC),
        )
    assert legal_basis(RecordKind.SANCTION_CONFIRMATION, 60) == (
        "retention period of sanction confirmation records ended: 60 days after their "
        "listing closed (retention_sanction_confirmation_days = 60; PIPL art. 19 and 47)"
    )
