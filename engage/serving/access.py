"""Who may call the service, and for which accounts (docs/security.md).

* **Closed unless opened on purpose.** `check_exposure` refuses to serve beyond loopback without an API key
  unless the operator passes `--insecure-no-auth` (then it logs a warning saying what that exposes).
* **Keys scoped to accounts.** `ENGAGE_API_KEY` is an admin key (every account). A key file
  (`--key-file` / `ENGAGE_KEY_FILE`, YAML) adds admin keys and keys that may score, see and compare only the
  accounts listed for them; such a key gets 403 for another account's score, comparison and feed, and
  `/v1/accounts` lists only its accounts:

      admin:                       # every account, and the serving statistics on /ready
        - "a-long-random-admin-key"
      keys:                        # key: the accounts it may score, see and compare
        "a-long-random-key-for-anna": [anna.bakes]
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": [anna.bakes, ben.runs]

  A key may be written as `sha256:<hex digest>` so that the file holds no usable key. Keys are compared by
  their SHA-256 digest, never by prefix.
* **Host check.** Bound to loopback, the service answers only requests whose `Host` is a loopback name (or one
  of `--allowed-host`), so a web page cannot reach it by DNS rebinding (`HostGuard`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engage.errors import ConfigError

log = logging.getLogger("engage.serving")

KEY_FILE_ENV = "ENGAGE_KEY_FILE"
#: Shortest key a key file may hold (a key is a password that never expires: make it long and random).
MIN_KEY_LENGTH = 16
#: Host names a loopback server answers to, besides those the operator allows (`--allowed-host`).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the service on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


@dataclass(frozen=True)
class Access:
    """What one caller may do: every account (`admin`) or only `accounts`."""

    admin: bool
    accounts: frozenset[str] = frozenset()

    def allows(self, account: str) -> bool:
        return self.admin or normalise_account(account) in self.accounts

    def visible(self, accounts: Iterable[str]) -> list[str]:
        return [a for a in accounts if self.allows(a)]


#: A server with no key at all: every caller may do everything (only allowed on loopback, or on purpose).
OPEN = Access(admin=True)


def normalise_account(account: str) -> str:
    return str(account).strip().lower()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _stored_digest(entry: Any, where: str) -> str:
    if not isinstance(entry, str) or not entry:
        raise ConfigError(f"{where}: a key must be a non-empty string")
    if entry.startswith("sha256:"):
        digest = entry[len("sha256:"):].strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{where}: 'sha256:' must be followed by the key's 64-digit hex SHA-256 digest")
        return digest
    if len(entry) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"{where}: a key of {len(entry)} characters is too short to be a secret; use at least "
                          f"{MIN_KEY_LENGTH} random characters (e.g. python -c "
                          "'import secrets; print(secrets.token_urlsafe())')")
    return _digest(entry)


class KeyRing:
    """The API keys a server accepts, each with its `Access` (looked up by the SHA-256 of the key sent)."""

    def __init__(self, access_by_digest: dict[str, Access]):
        self._access = dict(access_by_digest)

    def __len__(self) -> int:
        return len(self._access)

    def lookup(self, key: str) -> Access | None:
        return self._access.get(_digest(key))

    @classmethod
    def load(cls, api_key: str | None, key_file: str | os.PathLike | None) -> KeyRing | None:
        """The keys of `ENGAGE_API_KEY` (admin) and the key
        file; None when there are none (an open server)."""
        access: dict[str, Access] = {}
        if api_key:
            access[_digest(api_key)] = Access(admin=True)
        if key_file:
            for digest, granted in _read_key_file(Path(key_file)).items():
                if digest in access and access[digest] != granted:
                    raise ConfigError(f"{key_file}: the same key is listed twice with different accounts")
                access[digest] = granted
        return cls(access) if access else None


def _read_key_file(path: Path) -> dict[str, Access]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"key file {path} cannot be read ({e.strerror or e}); check --key-file / {KEY_FILE_ENV}") from e
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"key file {path} is not valid "
                          f"{'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {e}") from e
    if not isinstance(data, dict) or not set(data) <= {"admin", "keys"} or not data:
        raise ConfigError(f"key file {path} must be a mapping with 'admin' (a list of keys) and/or 'keys' "
                          "(key: [accounts]); see docs/security.md")
    out: dict[str, Access] = {}
    admins = data.get("admin") or []
    if not isinstance(admins, list):
        raise ConfigError(f"key file {path}: 'admin' must be a list of keys")
    for i, entry in enumerate(admins, start=1):
        out[_stored_digest(entry, f"key file {path}, admin key {i}")] = Access(admin=True)
    scoped = data.get("keys") or {}
    if not isinstance(scoped, dict):
        raise ConfigError(f"key file {path}: 'keys' must map each key to the list of accounts it may use")
    for i, (entry, accounts) in enumerate(scoped.items(), start=1):
        where = f"key file {path}, key {i}"
        if isinstance(accounts, str):
            accounts = [accounts]
        if not isinstance(accounts, list) or not accounts or not all(isinstance(a, str) and a.strip()
                                                                     for a in accounts):
            raise ConfigError(f"{where}: give the list of accounts the key may score, see and compare")
        digest = _stored_digest(entry, where)
        if digest in out:
            raise ConfigError(f"{where} is also an admin key; list it once")
        out[digest] = Access(admin=False, accounts=frozenset(normalise_account(a) for a in accounts))
    return out


def check_exposure(host: str, keys: KeyRing | None, insecure_no_auth: bool) -> None:
    """Refuse to serve beyond loopback without a key, unless
    the operator asked for it (then log what it exposes)."""
    if keys is not None or is_loopback(host):
        return
    if not insecure_no_auth:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: "
            "anyone who can reach the port could list every "
            "account, download their photos (/v1/feed) and estimate "
            "their private insights. Set ENGAGE_API_KEY or "
            "--key-file (docs/security.md), listen on 127.0.0.1, "
            "or pass --insecure-no-auth if this network is "
            "trusted")
    log.warning(
        "--insecure-no-auth: serving on %s WITHOUT an API key; anyone who can reach this port can list "
                "every account, see their feed photos and score drafts for any of them", host)


def allowed_hosts(host: str, extra: Iterable[str]) -> frozenset[str] | None:
    """The Host names the server answers to, or None for any: loopback names when bound to loopback (plus
    `extra`), only `extra` when bound elsewhere and some are given ('*' in `extra`: any)."""
    names = {h.strip().strip("[]").lower() for h in extra if h.strip()}
    if "*" in names:
        return None
    if is_loopback(host):
        return frozenset(names | set(LOOPBACK_NAMES) | {host.strip().strip("[]").lower()})
    return frozenset(names) if names else None


def host_name(header: str) -> str:
    """The name in a Host header, without its port ('[::1]:8000' -> '::1', 'localhost:80' -> 'localhost')."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostGuard:
    """ASGI middleware: refuse (400, naming the Host header) a request whose Host is not an allowed name.

    A page on evil.example whose name is re-pointed to 127.0.0.1 (DNS rebinding) sends `Host: evil.example`,
    so it is refused before any route runs. A request without
    a Host header (HTTP/1.0, not a browser) passes."""

    def __init__(self, app: Any, allowed: frozenset[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
            if host is not None and host_name(host) not in self.allowed:
                body = json.dumps({"error": {"field": "Host", "message": (
                    "is not a name this server answers to; it listens on loopback and answers to "
                    f"{', '.join(sorted(self.allowed))} (serve.py --allowed-host adds names)")}}).encode()
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()),
                                        (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def ready_access(request: Any) -> Access | None:
    """The caller's access on /ready (which needs no key):
    an admin key's, OPEN on a keyless loopback server."""
    keys = request.app.state.keys
    if keys is None:
        return OPEN if is_loopback(request.app.state.options.host) else None
    key = request.headers.get("x-api-key")
    return keys.lookup(key) if key else None
