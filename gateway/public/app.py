"""The public, read-only HTTP service: the feed, entries and their proofs, the search page.

A Starlette application (served by uvicorn, ``gateway.public.server``). Every route is
GET (HEAD comes with it); any other method answers 405, any other path 404. Each
client address has a token bucket (429 with Retry-After past it); page sizes are
bounded; every answer carries an ETag (304 on a matching If-None-Match) and, for
content built from a checkpoint, Last-Modified. Nothing here reaches what only members
may read: the routes read ``PublicFeed`` alone, which holds published entries and the
records that prove them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.core.identifiers import REPORTING_UNITS
from gateway.core.publication import FIELD_LABELS
from gateway.errors import GatewayError, LogDamageError, NotFoundError
from gateway.public.pages import Pages
from gateway.public.ratelimit import ClientRates, RateSettings, retry_after
from gateway.service.publication import FeedEntry, FeedPage, PublicFeed, StoredCheckpoint

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PublicObserver(Protocol):
    def observe_public(self, route: str, status: int, seconds: float) -> None: ...

    def observe_public_limited(self) -> None: ...


@dataclass(frozen=True)
class PublicSettings:
    default_page: int = 100
    max_page: int = 1000
    rate: RateSettings = field(default_factory=lambda: RateSettings(20.0, 40))
    cache_max_age_s: int = 5


class BadRequest(Exception):
    pass


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str, advice: str = "") -> Response:
    body = {"error": message, **({"advice": advice} if advice else {})}
    return Response(_json(body), status, media_type="application/json")


def cached(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    checkpoint: StoredCheckpoint | None,
    max_age_s: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """A 200 with ETag (and Last-Modified), or a 304 when the client holds this body."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    out = {"ETag": etag, "Cache-Control": f"public, max-age={max_age_s}", **(headers or {})}
    if checkpoint is not None:
        out["Last-Modified"] = format_datetime(checkpoint.signed_at, usegmt=True)
    wanted = request.headers.get("if-none-match", "")
    if wanted and (wanted.strip() == "*" or etag in [t.strip() for t in wanted.split(",")]):
        return Response(status_code=304, headers=out)
    return Response(body, 200, media_type=media_type, headers=out)


def _int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{name}: {raw[:40]!r} is not a whole number")
    value = int(raw[:20])
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _unit(request: Request) -> str | None:
    unit = request.query_params.get("unit") or None
    if unit is not None and unit not in REPORTING_UNITS:
        raise BadRequest(f"unit: {unit[:10]!r} is not a 2-digit reporting unit (11 … 66)")
    return unit


def _format(request: Request) -> str:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest(f"format: {fmt[:10]!r} is neither json nor csv")
    return fmt


def entry_json(e: FeedEntry) -> dict[str, Any]:
    return {"change_index": e.change_index, "log_index": e.log_index, **e.fields}


def page_csv(page: FeedPage) -> bytes:
    """The page as CSV: UTF-8 with a byte-order mark (spreadsheets read it as UTF-8),
    the Chinese labels as headers, values as in JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["变更序号", "日志序号", *FIELD_LABELS.values()])
    for e in page.entries:
        writer.writerow([e.change_index, e.log_index, *(e.fields[k] for k in FIELD_LABELS)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class PublicApp:
    """The routes over one ``PublicFeed``."""

    def __init__(self, feed: PublicFeed, settings: PublicSettings) -> None:
        self.feed = feed
        self.settings = settings
        self.pages = Pages(feed)

    def _cached(self, request: Request, body: bytes, media_type: str, **kw: Any) -> Response:
        return cached(request, body, media_type, max_age_s=self.settings.cache_max_age_s, **kw)

    def _page(self, request: Request, *, in_force_only: bool) -> Response:
        s = self.settings
        since = _int(request, "since", 0, low=0, high=2**62)
        limit = _int(request, "limit", s.default_page, low=1, high=s.max_page)
        unit = _unit(request)
        fmt = _format(request)
        page = self.feed.page(since, limit, unit=unit, in_force_only=in_force_only)
        cp = page.checkpoint
        if fmt == "csv":
            headers = {
                "Alliance-Checkpoint-Size": str(cp.tree_size),
                "Alliance-Next-Since": str(page.next_since),
                "Alliance-More": "true" if page.more else "false",
                "Content-Disposition": 'inline; filename="feed.csv"',
            }
            return self._cached(
                request, page_csv(page), "text/csv; charset=utf-8", checkpoint=cp, headers=headers
            )
        body = {
            "checkpoint": cp.note,
            "tree_size": cp.tree_size,
            "unit": unit,
            "since": page.since,
            "next_since": page.next_since,
            "more": page.more,
            "entries": [entry_json(e) for e in page.entries],
        }
        return self._cached(request, _json(body), "application/json", checkpoint=cp)

    def feed_changes(self, request: Request) -> Response:
        return self._page(request, in_force_only=False)

    def feed_listings(self, request: Request) -> Response:
        return self._page(request, in_force_only=True)

    def entry(self, request: Request) -> Response:
        cp, e = self.feed.entry(_record_id(request))
        body = {"checkpoint": cp.note, "tree_size": cp.tree_size, "entry": entry_json(e)}
        return self._cached(request, _json(body), "application/json", checkpoint=cp)

    def proof(self, request: Request) -> Response:
        size = _int(request, "tree_size", 0, low=0, high=2**62)
        doc = self.feed.proof(_record_id(request), size)
        return self._cached(request, _json(doc), "application/json", checkpoint=None)

    def checkpoint(self, request: Request) -> Response:
        cp = self.feed.checkpoint()
        return self._cached(request, cp.note.encode(), "text/plain; charset=utf-8", checkpoint=cp)

    def health(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    def home(self, request: Request) -> Response:
        html = self.pages.home(request.query_params.get("lang", ""))
        return self._cached(request, html, "text/html; charset=utf-8", checkpoint=None)

    def search(self, request: Request) -> Response:
        lang = request.query_params.get("lang", "")
        query = request.query_params.get("q", "").strip()[:100]
        target = self.pages.search_target(query)
        if target is not None:
            suffix = "?lang=en" if self.pages.locale(lang).code == "en" else ""
            return RedirectResponse(f"/entity/{target}{suffix}", status_code=303)
        html = self.pages.search(query, lang)
        return self._cached(request, html, "text/html; charset=utf-8", checkpoint=None)

    def entity(self, request: Request) -> Response:
        uscc = request.path_params["uscc"]
        html, status = self.pages.entity(uscc, request.query_params.get("lang", ""))
        if status != 200:
            return Response(html, status, media_type="text/html; charset=utf-8")
        return self._cached(request, html, "text/html; charset=utf-8", checkpoint=None)


def _record_id(request: Request) -> str:
    rid = str(request.path_params["record_id"])
    if len(rid) != 64 or not all(c in "0123456789abcdef" for c in rid):
        raise BadRequest("record_id: must be 64 lowercase hex characters")
    return rid


def _guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Errors as JSON with a precise status; anything unexpected is a generic 500."""

    def run(request: Request) -> Response:
        try:
            return handler(request)
        except BadRequest as e:
            return _error(400, str(e))
        except NotFoundError as e:
            return _error(404, str(e), e.advice or "")
        except LogDamageError as e:
            logger.error("public: %s", e)
            return _error(503, "the log cannot serve this now", "retry later")
        except GatewayError as e:
            return _error(400, str(e), e.advice or "")
        except Exception:
            logger.exception("public: request failed")
            return _error(500, "internal error")

    run.__name__ = handler.__name__
    return run


class _Guard:
    """Rate limits and metrics around every request (routes, 404s and 405s alike)."""

    def __init__(
        self,
        app: ASGIApp,
        rates: ClientRates,
        observer: PublicObserver | None,
        clock: Callable[[], float],
    ) -> None:
        self._app = app
        self._rates = rates
        self._observer = observer
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        began = time.perf_counter()
        client = scope.get("client") or ("unknown", 0)
        wait = self._rates.take(str(client[0]))
        observed = False

        def observe(status: int) -> None:
            # Counted before the response starts: a client that has read its answer (and
            # then scrapes /metrics) always finds its request counted.
            nonlocal observed
            observed = True
            if self._observer is not None:
                endpoint = scope.get("endpoint")
                route = getattr(endpoint, "__name__", "none") if endpoint is not None else "none"
                self._observer.observe_public(route, status, time.perf_counter() - began)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(int(message["status"]))
            await send(message)

        if wait > 0:
            if self._observer is not None:
                self._observer.observe_public_limited()
            response = _error(429, "too many requests from this address", "slow down")
            response.headers["Retry-After"] = retry_after(wait)
            await response(scope, receive, sending)
        else:
            try:
                await self._app(scope, receive, sending)
            finally:
                if not observed:
                    observe(500)  # ended without an answer


def build_app(
    feed: PublicFeed,
    settings: PublicSettings | None = None,
    *,
    observer: PublicObserver | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    settings = settings or PublicSettings()
    app = PublicApp(feed, settings)
    get = ["GET"]  # Starlette adds HEAD; every other method is answered 405
    routes = [
        Route("/", _guarded(app.home), methods=get),
        Route("/search", _guarded(app.search), methods=get),
        Route("/entity/{uscc}", _guarded(app.entity), methods=get),
        Route("/v1/feed", _guarded(app.feed_changes), methods=get),
        Route("/v1/listings", _guarded(app.feed_listings), methods=get),
        Route("/v1/checkpoint", _guarded(app.checkpoint), methods=get),
        Route("/v1/entries/{record_id}", _guarded(app.entry), methods=get),
        Route("/v1/entries/{record_id}/proof", _guarded(app.proof), methods=get),
        Route("/healthz", _guarded(app.health), methods=get),
        Mount("/static", StaticFiles(packages=[("gateway.public", "static")]), name="static"),
    ]
    starlette = Starlette(routes=routes)
    return _Guard(starlette, ClientRates(settings.rate, clock=clock), observer, clock)


__all__ = ["PublicApp", "PublicObserver", "PublicSettings", "build_app", "cached", "page_csv"]
