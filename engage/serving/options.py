"""The service's settings (`ServeOptions`), kept free of
heavy imports so that `serve.py --help` is instant."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engage.config import TrackingSettings

API_KEY_ENV = "ENGAGE_API_KEY"
KEY_FILE_ENV = "ENGAGE_KEY_FILE"  # engage/serving/access.py reads it
ADMIN_TOKEN_ENV = "ENGAGE_ADMIN_TOKEN"
DEFAULT_MODEL = "models:/engage@champion"
#: Largest request body accepted: a 7.5 MB photo base64-encoded, with room for the caption and history.
MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class ServeOptions:
    """Everything `serve.py` can set; the defaults are what `python serve.py` runs with."""

    model: str = DEFAULT_MODEL  # MLflow model URI or an exported bundle directory
    tracking_uri: str | None = TrackingSettings().uri  # MLflow tracking store for models:/ URIs
    host: str = "127.0.0.1"
    port: int = 8000
    max_concurrent: int = 8  # drafts scored at once (worker threads)
    max_queue: int = 64  # scoring requests allowed to wait; more get 503 + Retry-After
    retry_after_s: int = 1  # what 503 answers tell clients to wait
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies get 413
    read_timeout_s: float = 15.0  # headers must arrive within this, and a body may pause no longer (408)
    body_timeout_s: float = 60.0  # a whole request body must arrive within this (408)
    # an idle keep-alive connection is closed after this (uvicorn's timeout_keep_alive)
    keep_alive_s: float = 5.0
    max_connections: int = 200  # open connections; beyond, a new one gets 503 + Retry-After at once
    # Concurrent drafts' photos and captions are embedded together (engage/scoring/batching.py):
    batch_size: int = 16  # most photos + captions in one forward pass per model (1: each draft alone)
    # how long a batch waits for more drafts (never while no other draft is scored)
    batch_wait_ms: float = 5.0
    # photos and captions whose vectors are kept in memory (~6 KB each; 0: none)
    vector_cache_items: int = 8192
    api_key: str | None = field(default_factory=lambda: os.environ.get(API_KEY_ENV) or None)  # guards /v1/*
    # /admin/*
    admin_token: str | None = field(default_factory=lambda: os.environ.get(ADMIN_TOKEN_ENV) or None)
    # Keys scoped to accounts, and admin keys (engage/serving/access.py, docs/security.md):
    key_file: str | None = field(default_factory=lambda: os.environ.get(KEY_FILE_ENV) or None)
    insecure_no_auth: bool = False  # serve beyond loopback without any key (refused unless set)
    # Host names answered besides loopback's ('*': any; DNS-rebinding guard)
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    # The outcome store (engage/outcomes): a SQLAlchemy URL, or None to record nothing (score_id null).
    # serve.py defaults it to a SQLite file beside the tracking
    # store, or in the working directory for a bundle.
    outcomes: str | None = None
    outcomes_photos: bool = False  # also keep the scored drafts' photos in the store (default: hashes only)
    time_zone: str = "UTC"  # IANA zone the best hour is given in, for accounts without one of their own
    account_time_zones: dict[str, str] = field(default_factory=dict)  # account -> its IANA zone

    def time_zone_of(self, account: str) -> str:
        """The zone the best hour of `account` is given in when the request names none."""
        return self.account_time_zones.get(account, self.time_zone)
