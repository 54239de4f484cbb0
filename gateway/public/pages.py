"""The public search page: server-rendered HTML in Chinese (English with ``?lang=en``).

Templates (``templates/*.j2``, Jinja2 with autoescaping) and the ``public`` message
catalog (``locale/<locale>/LC_MESSAGES/public.po``, ``make messages``) make every text;
the names of lists, conduct types and units are the report's official names
(``gateway.ops.report_names``). Pages use no script: a form, links and tables.

An entity's page checks each entry's proof here, the way any reader would
(``PublicFeed.verify``), and says what was checked against which checkpoint.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

from gateway.core.identifiers import validate_uscc
from gateway.core.notes import Checkpoint, parse_signed_note
from gateway.errors import GatewayError
from gateway.ops.i18n import CatalogFolder, Locale
from gateway.ops.report_names import Names
from gateway.service.publication import FeedEntry, PublicFeed

PUBLIC_CATALOGS = CatalogFolder.of_package("gateway.public", "locale", "public")
_USCC_SHAPE = re.compile(r"[0-9A-Z]{18}")


@lru_cache(maxsize=2)
def _locale(code: str) -> Locale:
    return Locale(code, PUBLIC_CATALOGS.translations(code))


@lru_cache(maxsize=2)
def _environment(code: str) -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.public", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(_locale(code).translations, newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True)
class EntryView:
    fields: dict[str, str]
    list_name: str
    conduct_name: str
    listed_on: str
    reported_on: str
    removed_on: str
    removal_step: str
    in_force: bool
    verified: bool
    problem: str


class Pages:
    def __init__(self, feed: PublicFeed) -> None:
        self._feed = feed

    @staticmethod
    def locale(lang: str) -> Locale:
        return _locale("en" if lang.lower().startswith("en") else "zh_CN")

    def _render(self, template: str, lang: str, switch: str = "/", **context: Any) -> bytes:
        locale = self.locale(lang)
        page = _environment(locale.code).get_template(template)
        html = page.render(
            lang=locale.html_lang,
            en=locale.code == "en",
            query_lang="?lang=en" if locale.code == "en" else "",
            switch=switch,
            **context,
        )
        return html.encode("utf-8")

    def home(self, lang: str) -> bytes:
        return self._render("home.html.j2", lang, query="", problem="", results=None)

    @staticmethod
    def search_target(query: str) -> str | None:
        """A valid credit code typed into the box goes straight to its entity page."""
        code = query.upper()
        if _USCC_SHAPE.fullmatch(code):
            try:
                return validate_uscc(code)
            except GatewayError:
                return None
        return None

    def search(self, query: str, lang: str) -> bytes:
        _ = self.locale(lang).gettext
        problem = ""
        results: list[tuple[str, str]] = []
        if not query:
            problem = _("Enter a credit code or a company name.")
        elif _USCC_SHAPE.fullmatch(query.upper()):
            problem = _("%(code)s is not a valid unified social credit code.") % {"code": query}
        else:
            results = self._feed.search_names(query)
        switch = "/search?" + urlencode({"q": query})
        return self._render(
            "home.html.j2", lang, switch, query=query, problem=problem, results=results
        )

    def entity(self, uscc: str, lang: str) -> tuple[bytes, int]:
        locale = self.locale(lang)
        try:
            code = validate_uscc(uscc)
        except GatewayError:
            return self._render("missing.html.j2", lang, code=uscc[:40]), 404
        switch = f"/entity/{code}"
        checkpoint, entries = self._feed.subject(code)
        if not entries:
            return self._render("missing.html.j2", lang, switch, code=code), 404
        views = [self._view(e, checkpoint.tree_size, locale) for e in entries]
        cp = Checkpoint.parse(parse_signed_note(checkpoint.note)[0])
        return (
            self._render(
                "entity.html.j2",
                lang,
                switch,
                code=code,
                name=next((v.fields["name"] for v in views if v.fields["name"]), ""),
                entries=views,
                all_verified=all(v.verified for v in views),
                checkpoint={
                    "origin": cp.origin,
                    "size": locale.number(cp.size),
                    "root": base64.b64encode(cp.root_hash).decode(),
                    "signed_at": locale.datetime(checkpoint.signed_at),
                    "note": checkpoint.note,
                },
            ),
            200,
        )

    def _view(self, entry: FeedEntry, tree_size: int, locale: Locale) -> EntryView:
        names = Names(locale)
        f = entry.fields
        problem = ""
        try:
            proof = self._feed.proof(f["record_id"], tree_size)
            self._feed.verify(proof)
        except GatewayError as e:
            problem = str(e)

        def on(value: str) -> str:
            return locale.date(datetime.fromisoformat(value)) if value else ""

        def enum(value: str) -> str:
            return value.upper().replace("-", "_")

        return EntryView(
            fields=f,
            list_name=names.list_kind(enum(f["list"])),
            conduct_name=names.conduct(enum(f["conduct"]), f["conduct_other"]),
            listed_on=on(f["listed_at"]),
            reported_on=on(f["reported_at"]),
            removed_on=on(f["removal_at"]),
            removal_step=names.step(enum(f["removal_step"])) if f["removal_step"] else "",
            in_force=f["status"] == "in_force",
            verified=not problem,
            problem=problem,
        )


__all__ = ["PUBLIC_CATALOGS", "Pages"]
