"""The public service's settings and catalogs: bad values refused at start-up with the
setting named; every string of the public pages translated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.ops.config import config_from_mapping
from gateway.ops.i18n import LOCALES
from gateway.ops.i18n_check import catalog_problems, extract_messages
from gateway.public.pages import PUBLIC_CATALOGS

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "trust_domain": "zj.alliance.test",
    "gateway_name": "gw",
    "region_code": "330100",
    "ca_file": "ca.pem",
    "cert_file": "gw.pem",
    "key_file": "gw-key.pem",
    "signing_key_file": "signing-key.pem",
}


def _config(**extra: Any) -> Any:
    return config_from_mapping({**BASE, **extra}, base_dir=ROOT, env={})


def test_the_public_service_is_off_unless_configured() -> None:
    assert _config().public_address == ""
    assert _config(public_address="127.0.0.1:8080").public_address == "127.0.0.1:8080"
    assert _config(public_address="[::1]:0").public_address == "[::1]:0"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("public_address", "localhost", "public_address"),
        ("public_address", "127.0.0.1:80 ; rm", "public_address"),
        ("public_max_page", 20_000, "public_max_page"),
        ("public_max_page", 0, "public_max_page"),
        ("public_rate_per_client_rps", -1, "public_rate_per_client_rps"),
        ("public_rate_burst", 0, "public_rate_burst"),
        ("public_max_connections", 0, "public_max_connections"),
    ],
)
def test_bad_public_settings_are_refused(setting: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**{setting: value})


def test_every_public_string_is_translated() -> None:
    marked = extract_messages(ROOT, ROOT / "babel-public.cfg")
    assert "Search the blacklist and key-scrutiny list" in marked  # a template
    assert "Enter a credit code or a company name." in marked  # gateway/public/pages.py
    for locale in LOCALES:
        po = ROOT / "gateway" / "public" / "locale" / locale / "LC_MESSAGES" / "public.po"
        assert catalog_problems(po, locale, marked, source_locale=locale == "en") == []
    zh = PUBLIC_CATALOGS.translations("zh_CN")
    assert zh.gettext("Reason for removal") == "移出原因"
