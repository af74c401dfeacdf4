"""Talking to the central server: two requests (push a batch, pull reference data), and
every way they can fail turned into a ``SyncError`` with a reason a librarian can read.

Nothing here retries: the daemon decides when to try again (backoff, Retry-After).
"""

from __future__ import annotations

import email.utils
import errno
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from bookcorner.i18n import _
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import API_PREFIX, PushReply, PushRequest, ReferenceDelta, decode, encode

log = logging.getLogger(__name__)


class SyncError(Exception):
    """A round could not finish. ``offline``: the server could not be reached at all
    (the kiosk shows "offline"); ``busy``: it has too many kiosks at once (429: the kiosk
    shows "server busy, retrying"); otherwise it answered wrongly (the kiosk shows "error")."""

    def __init__(self, message: str, *, offline: bool = False, retry_after: float | None = None,
                 cause: str = "", busy: bool = False) -> None:
        super().__init__(message)
        self.message, self.offline, self.retry_after, self.cause = message, offline, retry_after, cause
        self.busy = busy


@dataclass
class Exchange:
    """What the last request cost (for logs and the benchmark)."""

    seconds: float = 0.0
    server_timing: str = ""
    sent_bytes: int = 0


def _root(error: BaseException) -> BaseException:
    """The innermost cause (requests wraps urllib3, which wraps the socket's error)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or error.__context__ or (error.args[-1] if error.args else None)
        if isinstance(inner, BaseException):
            reason = getattr(inner, "reason", None)
            if isinstance(reason, BaseException):
                inner = reason
            error = inner
        else:
            break
    return error


def _chain(error: BaseException) -> str:
    parts, seen = [], set()
    current: Any = error
    while isinstance(current, BaseException) and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__ or getattr(current, "reason", None)
    return " <- ".join(parts)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds, from either form HTTP allows (delay-seconds or a date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class SyncClient:
    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        ca_bundle: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        self.base = server_url.rstrip("/")
        self.host = urlsplit(self.base).hostname or self.base
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.session = requests.Session()
        self.session.headers.update(bearer(token))
        self.session.headers["User-Agent"] = "bookcorner-syncd"
        self.session.verify = ca_bundle or True
        self.session.trust_env = False  # a kiosk's sync goes where its configuration says, not via proxy settings
        self.last = Exchange()

    def close(self) -> None:
        self.session.close()

    def push(self, request: PushRequest) -> PushReply:
        body = encode(request)
        raw = self._exchange("POST", f"{API_PREFIX}/push", data=body,
                             headers={"Content-Type": "application/json"})
        reply = self._decode(raw, PushReply)
        _check_reply(request, reply)
        return reply

    def reference(self, since: int, epoch: str | None, incarnation: str | None = None) -> ReferenceDelta:
        params: dict[str, Any] = {"since": since}
        if epoch:
            params["epoch"] = epoch
        if incarnation:
            params["incarnation"] = incarnation
        return self._decode(self._exchange("GET", f"{API_PREFIX}/reference", params=params), ReferenceDelta)

    # -- one request, every failure named --------------------------------------------------

    def _exchange(self, method: str, path: str, **kwargs: Any) -> bytes:
        url = self.base + path
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            content = response.content  # read it all here: a reply cut short fails here
        except requests.exceptions.SSLError as error:
            raise SyncError(_("the server's certificate is not trusted ({detail}); if the school uses its own "
                              "certificate authority, set [sync] ca_bundle to its certificate").format(
                detail=_tls_detail(error)), cause=_chain(error)) from None
        except requests.exceptions.ConnectTimeout as error:
            raise SyncError(_("could not connect to {host} within {seconds:g} s (no network, or the server is "
                              "down)").format(host=self.host, seconds=self.timeout[0]),
                            offline=True, cause=_chain(error)) from None
        except requests.exceptions.ReadTimeout as error:
            raise SyncError(_("the server {host} did not answer within {seconds:g} s").format(
                host=self.host, seconds=self.timeout[1]), offline=True, cause=_chain(error)) from None
        except requests.exceptions.ChunkedEncodingError as error:
            raise SyncError(_("the server's reply was cut short ({detail}); will try again").format(
                detail=_short(_root(error))), cause=_chain(error)) from None
        except requests.exceptions.ConnectionError as error:
            raise self._unreachable(error) from None
        except requests.exceptions.RequestException as error:
            raise SyncError(_("the request to the server failed: {detail}").format(detail=_short(error)),
                            offline=True, cause=_chain(error)) from None
        self.last = Exchange(time.perf_counter() - started, response.headers.get("Server-Timing", ""),
                             len(kwargs.get("data") or b""))
        status = response.status_code
        if status == 200:
            return content
        detail = _error_detail(content)
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            shown = _("in {seconds:g} s").format(seconds=wait) if wait is not None else _("later")
            raise SyncError(_("the server is busy ({status}); it asked to come back {when}").format(
                status=status, when=shown), retry_after=wait, cause=detail, busy=status == 429)
        if status == 401:
            raise SyncError(_("the server does not accept this kiosk's credential ({detail}); issue a new one with "
                              "`bookcorner central add-kiosk ID --reissue` and save it on the kiosk").format(
                detail=detail), cause=detail)
        if status == 403:
            raise SyncError(_("the server refused: {detail} (is [kiosk] id the id the credential was issued "
                              "for?)").format(detail=detail), cause=detail)
        if status == 404:
            raise SyncError(_("{url} is not a bookcorner central server (404); check [sync] server_url").format(
                url=self.base), cause=detail)
        if status >= 500:
            raise SyncError(_("the server failed ({status}: {detail}); will try again").format(
                status=status, detail=detail), cause=detail)
        raise SyncError(_("the server refused the request ({status}: {detail})").format(status=status, detail=detail),
                        cause=detail)

    def _unreachable(self, error: requests.exceptions.ConnectionError) -> SyncError:
        root = _root(error)
        text = _chain(error)
        name_failed = ("NameResolutionError" in text or "Name or service not known" in text
                       or "Temporary failure in name resolution" in text or "nodename nor servname" in text
                       or "No address associated" in text)
        if name_failed:
            return SyncError(_("cannot find the server {host}: its name does not resolve (DNS); is the network up "
                               "and [sync] server_url right?").format(host=self.host), offline=True, cause=text)
        code = getattr(root, "errno", None)
        if code == errno.ECONNREFUSED or "Connection refused" in text:
            return SyncError(_("the server {host} refused the connection (is the central server running?)").format(
                host=self.host), offline=True, cause=text)
        if code in (errno.ECONNRESET, errno.EPIPE) or "Connection reset" in text or "Connection aborted" in text \
                or "RemoteDisconnected" in text:
            return SyncError(_("the connection to the server was cut off ({detail}); will try again").format(
                detail=_short(root)), offline=True, cause=text)
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
            return SyncError(_("no route to the server {host} (is the network up?)").format(host=self.host),
                             offline=True, cause=text)
        return SyncError(_("cannot reach the server {host}: {detail}").format(host=self.host, detail=_short(root)),
                         offline=True, cause=text)

    def _decode(self, raw: bytes, kind: type) -> Any:
        try:
            return decode(raw, kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise SyncError(_("the server's reply was not understood ({detail}); will try again").format(
                detail=str(error)[:200]), cause=repr(raw[:200])) from None


def _check_reply(request: PushRequest, reply: PushReply) -> None:
    """A reply must answer the batch that was sent, event for event."""
    sent = [(e.event_id, e.seq) for e in request.events]
    answered = [(r.event_id, r.seq) for r in reply.results]
    if reply.batch_id != request.batch_id or reply.kiosk_id != request.kiosk_id or sent != answered:
        raise SyncError(_("the server's reply does not match the batch sent (batch {batch}); will try again").format(
            batch=request.batch_id), cause=f"reply for {reply.batch_id}, {len(answered)} results for {len(sent)}")
    if reply.applied_seq < 0:
        raise SyncError(_("the server's reply was not understood ({detail}); will try again").format(
            detail="applied_seq < 0"))


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _tls_detail(error: BaseException) -> str:
    text = _chain(error)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "hostname mismatch", "WRONG_VERSION_NUMBER"):
        if marker in text:
            start = text.find(marker)
            return text[start:start + 120].split(" <- ")[0].rstrip(")")
    return _short(_root(error))


def _error_detail(content: bytes) -> str:
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return content[:120].decode("utf-8", "replace") or "-"
    if isinstance(body, dict) and "detail" in body:
        return f"{body.get('error', '')}: {body['detail']}"[:300]
    return str(body)[:120]
