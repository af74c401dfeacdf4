"""A kiosk's credential: one random token, issued by the server, shown once.

The kiosk sends it as ``Authorization: Bearer <token>`` (over HTTPS in production) and
signs its USB exports with a key derived from it. The server keeps only
``token_hash(token)``, to recognise it, and ``signing_key(token)``, to check exports: a
copy of the server's database does not let anyone push as a kiosk. Tokens carry 256
random bits, so a plain SHA-256 is as good as a slow password hash here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "bck1_"
_EXPORT_KEY_LABEL = b"bookcorner usb export signing key v1"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def signing_key(token: str) -> bytes:
    return hmac.new(token.encode("utf-8"), _EXPORT_KEY_LABEL, hashlib.sha256).digest()


def sign(body: bytes, key: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, key: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(body, key), signature)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
