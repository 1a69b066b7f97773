"""Signed, short-lived URLs for image bytes and signed session cookies, both keyed by one server secret.

A browser's `<img src>` cannot send an Authorization header, so the Photo and Face models carry URLs
whose query holds the owner, an expiry and an HMAC over path and query. Nothing is stored: any API
process with the same secret checks them. Session cookies are signed the same way and name the API key
they came from, so revoking the key ends its sessions.
"""

import base64
import hashlib
import hmac
import math
import os
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from core.errors import Forbidden

SECRET_FILE_NAME = "url-secret"
SIGNATURE_PARAM = "sig"
EXPIRES_PARAM = "expires"
OWNER_PARAM = "owner"
SIGNED_URL_PARAMS = frozenset({SIGNATURE_PARAM, EXPIRES_PARAM, OWNER_PARAM})
# Expiry times are rounded up to this many seconds, so one image keeps one URL for a while and the
# browser's cache serves it instead of fetching the same bytes under a new query string.
EXPIRY_BUCKET_SECONDS = 300


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """The configured secret, else one made once in the data directory (so restarts and every process
    sharing the data directory agree on it)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        candidate = data_dir / f".{SECRET_FILE_NAME}.{secrets.token_hex(4)}"
        candidate.write_text(secrets.token_urlsafe(48))
        os.chmod(candidate, 0o600)
        try:
            # link() fails when another process won the race: then its secret is the one.
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip().encode()


def _derive(secret: bytes, purpose: str) -> bytes:
    """One key per purpose, so a session token can never pass as a URL signature or the reverse."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _canonical(path: str, params: dict[str, str]) -> str:
    return path + "?" + urlencode(sorted(params.items()))


class UrlSigner:
    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._url_key = _derive(secret, "signed-url")
        self._session_key = _derive(secret, "session")
        self.ttl_seconds = ttl_seconds

    def sign(self, path: str, *, owner_id: str, params: dict[str, str] | None = None) -> str:
        """`path?params&owner=..&expires=..&sig=..`, valid for at least the configured lifetime."""
        expires = math.ceil((time.time() + self.ttl_seconds) / EXPIRY_BUCKET_SECONDS) * EXPIRY_BUCKET_SECONDS
        signed = {**(params or {}), OWNER_PARAM: owner_id, EXPIRES_PARAM: str(expires)}
        signature = _mac(self._url_key, _canonical(path, signed))
        return _canonical(path, {**signed, SIGNATURE_PARAM: signature})

    def verify(self, path: str, params: dict[str, str]) -> str:
        """The owner id a signed URL grants; Forbidden when it was altered or has expired."""
        given = params.get(SIGNATURE_PARAM, "")
        signed = {name: value for name, value in params.items() if name != SIGNATURE_PARAM}
        if not hmac.compare_digest(given, _mac(self._url_key, _canonical(path, signed))):
            raise Forbidden("the URL's signature does not match it; ask the API for a fresh URL")
        try:
            expires = int(signed.get(EXPIRES_PARAM, ""))
        except ValueError:
            raise Forbidden("the signed URL has no valid expiry") from None
        if expires < time.time():
            raise Forbidden("the signed URL has expired; ask the API for a fresh URL")
        return signed[OWNER_PARAM]

    def session_token(self, *, key_id: str, expires: int) -> str:
        payload = f"{key_id}.{expires}"
        return f"{payload}.{_mac(self._session_key, payload)}"

    def session_key_id(self, token: str) -> str | None:
        """The API key id a session token names, when the token is genuine and unexpired."""
        key_id, _, rest = token.partition(".")
        expires, _, signature = rest.partition(".")
        expected = _mac(self._session_key, f"{key_id}.{expires}")
        if not key_id or not hmac.compare_digest(signature, expected):
            return None
        if not expires.isdigit() or int(expires) < time.time():
            return None
        return key_id


@dataclass(frozen=True)
class OwnerUrls:
    """Signs URLs for one authenticated owner while a request is served."""

    signer: UrlSigner
    owner_id: str

    def sign(self, path: str, params: dict[str, str] | None = None) -> str:
        return self.signer.sign(path, owner_id=self.owner_id, params=params)


# Set once a request is authenticated, read by the response models that carry image URLs (they are built
# in many places; threading the signer through every one would couple each listing to URL signing).
current_urls: ContextVar[OwnerUrls | None] = ContextVar("current_urls", default=None)


def signed_url(path: str, params: dict[str, str] | None = None) -> str | None:
    """A signed URL for the owner of the current request, or None outside one."""
    urls = current_urls.get()
    return urls.sign(path, params) if urls is not None else None
