"""The outcome store: what engage predicted for each scored draft, and what the published post then did.

    store = OutcomeStore("sqlite:///outcomes.db")          # or any SQLAlchemy URL: postgresql+psycopg://...
    [score_id] = store.record_scores([ScoreRecord.of(draft, answer)])
    store.record_outcome(OutcomeIn(score_id=score_id,
    post_id="C1a2B3", posted_at=..., age_hours=24, likes=130))

One SQLAlchemy Core code path for every database; the schema is kept by Alembic migrations
(engage/outcomes/migrations/), applied when the store opens. Every write is one transaction: a score and
its prediction, or an outcome and the post it links, are recorded whole or not at all. On SQLite the
store runs in WAL mode with synchronous=FULL (a committed write survives the process being killed) and
takes the write lock at the start of each transaction (BEGIN IMMEDIATE), so concurrent writers, threads or
processes, queue instead of failing; on PostgreSQL the unique constraints decide races and the loser is
told which field clashed. Photos are kept as hashes (SHA-256 and a perceptual dHash, for matching a later
dump) unless the store is opened with `keep_photos=True`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from engage.data.schema import OUTCOME_COUNTS
from engage.errors import EngageError
from engage.outcomes.tables import outcomes, published, scores

if TYPE_CHECKING:
    from engage.scoring.answers import Answer

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Seconds a writer waits for SQLite's write lock before giving up (then the request gets a 503).
SQLITE_BUSY_TIMEOUT_S = 30
#: The file name of the default SQLite store.
DEFAULT_FILE = "outcomes.db"
_SHORTCODE = re.compile(r"instagram\.com/(?:[^/?#]+/)?(?:p|reel|reels|tv)/([A-Za-z0-9_-]+)")


class OutcomeError(EngageError):
    """Outcome input that cannot be recorded: an HTTP status, the field at fault and what to do."""

    def __init__(self, status: int, field: str | None, message: str):
        self.status, self.field, self.message = status, field, message
        super().__init__(f"{field or 'outcome'}: {message}")


def default_url(model: str, tracking_uri: str | None, cwd: Path | None = None) -> str:
    """Where `serve.py` keeps outcomes unless told: beside a SQLite tracking store for a registry model,
    in the working directory when serving an exported bundle
    (or with a tracking server that is not a file)."""
    cwd = cwd or Path.cwd()
    registry = model.startswith(("models:/", "runs:/"))
    prefix = "sqlite:///"
    if registry and tracking_uri and tracking_uri.startswith(prefix):
        return f"{prefix}{(Path(tracking_uri[len(prefix):]).resolve().parent / DEFAULT_FILE)}"
    return f"{prefix}{(cwd / DEFAULT_FILE).resolve()}"


def post_id_of(post_id: str | None, permalink: str | None) -> str | None:
    """The post id, or the shortcode of an Instagram permalink (https://www.instagram.com/p/C1a2B3/)."""
    if post_id is not None and post_id.strip():
        return post_id.strip()
    if permalink is not None and (match := _SHORTCODE.search(permalink)):
        return match.group(1)
    return None


def caption_hash(caption: str) -> str:
    """SHA-256 of the caption with runs of white space made
    one space and the ends trimmed (exports re-wrap lines)."""
    return hashlib.sha256(" ".join(caption.split()).encode("utf-8")).hexdigest()


def photo_dhash(photo: bytes | str | Path) -> str | None:
    """A 64-bit difference hash of the photo (16 hex digits): equal or a few bits apart after Instagram
    recompresses or resizes it, unlike a byte hash. None when the photo cannot be decoded.

    The size is checked from the header first (`check_image_size`: no bombs), and a JPEG is decoded at
    reduced scale (PIL's draft mode): a few milliseconds
    for a phone photo, so recording a score stays cheap."""
    from PIL import Image, ImageOps

    from engage.embed.decoding import check_image_size
    from engage.errors import DataError

    try:
        with Image.open(io.BytesIO(photo) if isinstance(photo, bytes | bytearray) else photo) as image:
            check_image_size(*image.size)
            image.draft("L", (64, 64))
            small = ImageOps.exif_transpose(image).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    except (DataError, OSError, ValueError, Image.DecompressionBombError):
        return None
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def dhash_distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def _finite(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass
class ScoreRecord:
    """One scored draft, as recorded: the draft's inputs, the model and its answer."""

    account: str
    caption: str
    model_version: str
    embedder: str
    prediction: dict[str, Any]
    planned_at: datetime | None = None
    photo: bytes | None = None
    followers: int | None = None
    sponsored: bool | None = None
    features: dict[str, Any] | None = None
    compare_id: str | None = None
    draft_index: int | None = None
    rank: int | None = None
    goal: str | None = None
    score_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, draft: Any, answer: Answer, **extra: Any) -> ScoreRecord:
        """From a `Draft` and the scorer's answer (with its feature row, when the scorer gave one)."""
        # The count targets are the outcome counts
        # (engage.model.targets registers one per OUTCOME_COUNTS name).
        prediction: dict[str, Any] = {name: value.model_dump(exclude_none=True) for name in OUTCOME_COUNTS
                                      if (value := answer.count(name)) is not None}
        if answer.authenticity_risk is not None:
            prediction["authenticity_risk"] = answer.authenticity_risk
        features = answer.features or None
        return cls(account=draft.account, caption=draft.caption, model_version=answer.model_version,
                   embedder=answer.embedder, prediction=prediction, planned_at=draft.posted_at,
                   photo=draft.image, followers=draft.followers, sponsored=draft.sponsored,
            features=None if features is None else {k: _finite(v) for k, v in features.items()}, **extra)


@dataclass
class OutcomeRecord:
    """The counts of a published post at an age; `score_id` may be left out once the post is linked."""

    posted_at: datetime
    age_hours: float
    counts: dict[str, int | None]  # None: not known (left out when recorded)
    score_id: str | None = None
    post_id: str | None = None
    permalink: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OutcomeStore:
    """Scores and outcomes in the database at `url` (any
    SQLAlchemy URL), migrated to the newest schema on open."""

    def __init__(self, url: str, *, keep_photos: bool = False, migrate: bool = True):
        self.url = url
        self.keep_photos = keep_photos
        self.engine = _engine(url)
        if migrate:
            self.upgrade()

    def __repr__(self) -> str:
        return f"OutcomeStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to `revision`, in one transaction (concurrent openers queue)."""
        from alembic import command

        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # seven lines of plugin set-up
        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------------------------------------- writes

    def record_scores(self, records: Sequence[ScoreRecord]) -> list[str]:
        """Record scored drafts (the drafts of a comparison together, in one transaction); their score ids."""
        now = datetime.now(UTC)
        rows = [{
            "score_id": r.score_id, "created_at": now, "account": r.account, "compare_id": r.compare_id,
            "draft_index": r.draft_index, "rank": r.rank, "goal": r.goal,
            "model_version": r.model_version[:200],
            # NUL is the one character PostgreSQL text cannot
            # hold: kept as U+FFFD (the hash is of the original).
            "embedder": r.embedder[:200], "planned_at": _utc(r.planned_at),
            "caption": r.caption.replace("\x00", "\ufffd"),
            "caption_hash": caption_hash(r.caption),
            "photo_sha256": hashlib.sha256(r.photo).hexdigest() if r.photo else None,
            "photo_dhash": photo_dhash(r.photo) if r.photo else None,
            "photo": r.photo if (r.photo and self.keep_photos) else None,
            "followers": r.followers, "sponsored": r.sponsored, "prediction": r.prediction,
            "features": r.features,
        } for r in records]
        if rows:
            with self._write() as connection:
                connection.execute(scores.insert(), rows)
        return [r.score_id for r in records]

    def record_outcome(self, outcome: OutcomeRecord, *, source: str = "api") -> dict[str, Any]:
        """Link the score to its post (first time) and record
        the counts at the stated age, in one transaction.

        OutcomeError (4xx, naming the field): an unknown score id, a post id already linked to another score,
        a score already linked to another post, a second record at the same age, no counts at all.
        """
        counts = {k: int(v) for k, v in outcome.counts.items() if v is not None}
        for name, value in counts.items():
            if name not in OUTCOME_COUNTS:
                raise OutcomeError(422, name,
                                   f"is not a count engage knows; counts are {', '.join(OUTCOME_COUNTS)}")
            if value < 0:
                raise OutcomeError(422, name, "is negative; counts are whole numbers >= 0")
        if not counts:
            raise OutcomeError(422, "likes",
                               f"no count was sent; send at least one of {', '.join(OUTCOME_COUNTS)}")
        if not (0 < outcome.age_hours <= 24 * 366 * 5) or not math.isfinite(outcome.age_hours):
            raise OutcomeError(422, "age_hours",
                               "must be over 0 and at most five years (hours since the post was published)")
        post_id = post_id_of(outcome.post_id, outcome.permalink)
        if post_id is None:
            field = "permalink" if outcome.permalink and not outcome.post_id else "post_id"
            raise OutcomeError(422, field, "send the post id, or the post's Instagram permalink "
                                           "(https://www.instagram.com/p/<shortcode>/)")
        posted_at = _utc(outcome.posted_at)
        try:
            with self._write() as connection:
                score_id = self._link(connection, outcome.score_id, post_id, outcome.permalink, posted_at)
                inserted = connection.execute(outcomes.insert().values(
                    score_id=score_id, age_hours=float(outcome.age_hours), recorded_at=datetime.now(UTC),
                    source=source[:40], **counts))
                outcome_id = inserted.inserted_primary_key[0]
        except IntegrityError:
            # A writer beside this one linked the post or recorded
            # this age first: say which, from what it committed.
            raise self._conflict(outcome.score_id, post_id, outcome.age_hours) from None
        return {"outcome_id": int(outcome_id), "score_id": score_id, "post_id": post_id,
                "age_hours": float(outcome.age_hours), "counts": counts}

    def _link(self, connection: Any, score_id: str | None, post_id: str, permalink: str | None,
              posted_at: datetime | None) -> str:
        by_post = connection.execute(
            select(published.c.score_id).where(published.c.post_id == post_id)).scalar()
        if score_id is None:
            if by_post is None:
                raise OutcomeError(422, "score_id",
                                   f"is required the first time a post is recorded: post {post_id} "
                                   "is linked to no score yet; send the score_id its /v1/score answer gave")
            return str(by_post)
        known = connection.execute(select(scores.c.score_id).where(scores.c.score_id == score_id)).scalar()
        if known is None:
            raise OutcomeError(422, "score_id", "is not a score this store recorded; send the score_id of a "
                                                "/v1/score or /v1/compare answer")
        if by_post is not None and by_post != score_id:
            raise OutcomeError(409, "post_id",
                               f"post {post_id} is already linked to another score ({by_post}); "
                               "a post id matches one score only: check the score_id or the post")
        linked = connection.execute(
            select(published.c.post_id).where(published.c.score_id == score_id)).scalar()
        if linked is not None and linked != post_id:
            raise OutcomeError(409, "post_id",
                               f"this score is already linked to post {linked}; one scored draft is "
                                               "one published post")
        if linked is None:
            if posted_at is None:
                raise OutcomeError(422, "posted_at", "is required the first time a post is recorded")
            connection.execute(published.insert().values(score_id=score_id, post_id=post_id,
                                                         permalink=permalink,
                                                         posted_at=posted_at, linked_at=datetime.now(UTC)))
        return score_id

    def _conflict(self, score_id: str | None, post_id: str, age_hours: float) -> OutcomeError:
        with self.engine.connect() as connection:
            by_post = connection.execute(
                select(published.c.score_id).where(published.c.post_id == post_id)).scalar()
            owner = by_post or score_id
            if score_id is not None and by_post is not None and by_post != score_id:
                return OutcomeError(409, "post_id",
                                    f"post {post_id} is already linked to another score ({by_post})")
            if owner is not None and score_id is not None:
                linked = connection.execute(
                    select(published.c.post_id).where(published.c.score_id == score_id)).scalar()
                if linked is not None and linked != post_id:
                    return OutcomeError(409, "post_id", f"this score is already linked to post {linked}")
        return OutcomeError(409, "age_hours", f"post {post_id} already has a record at {age_hours:g} hours; "
            "each age is recorded once (send another age, e.g. 168 for 7 days)")

    def _write(self) -> Any:
        """A transaction that retries nothing: on SQLite it holds the write lock from its first statement."""
        return _Transaction(self.engine)

    # ----------------------------------------------------------------------------------------------- reads

    def account_of(self, score_id: str | None, post_id: str | None) -> str | None:
        """The account of the score `score_id`, else of the score
        linked to `post_id`; None when neither is known."""
        with self.engine.connect() as connection:
            if score_id is not None:
                return connection.execute(
                    select(scores.c.account).where(scores.c.score_id == score_id)).scalar()
            if post_id is not None:
                return connection.execute(select(scores.c.account).select_from(
                    published.join(scores, scores.c.score_id == published.c.score_id))
                    .where(published.c.post_id == post_id)).scalar()
        return None

    def count(self, table: str) -> int:
        chosen = {"scores": scores, "published": published, "outcomes": outcomes}[table]
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(chosen)).scalar() or 0)

    def score(self, score_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(scores).where(scores.c.score_id == score_id)).mappings().first()
        return None if row is None else dict(row)

    def scores_frame(self, account: str | None = None, *, photos: bool = False) -> pd.DataFrame:
        """Every recorded score (of `account`), with its post id and publication time once published."""
        columns = [c for c in scores.c if photos or c.name != "photo"]
        query = select(*columns, published.c.post_id, published.c.posted_at,
                       published.c.permalink).select_from(
            scores.outerjoin(published, published.c.score_id == scores.c.score_id))
        if account is not None:
            query = query.where(scores.c.account == account)
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query.order_by(scores.c.created_at)).mappings().all())
        return _with_utc(frame, ("created_at", "planned_at", "posted_at"))

    def outcomes_frame(self, account: str | None = None) -> pd.DataFrame:
        """One row per recorded outcome: the score's prediction
        and draft beside the post's counts at an age."""
        query = select(
            outcomes.c.outcome_id, outcomes.c.age_hours, outcomes.c.recorded_at, outcomes.c.source,
            *(outcomes.c[name] for name in OUTCOME_COUNTS),
            published.c.post_id, published.c.posted_at, published.c.permalink,
            scores.c.score_id, scores.c.account, scores.c.compare_id, scores.c.draft_index, scores.c.rank,
            scores.c.goal, scores.c.model_version, scores.c.caption, scores.c.followers, scores.c.sponsored,
            scores.c.prediction, scores.c.features, scores.c.created_at, scores.c.photo,
        ).select_from(outcomes.join(published, published.c.score_id == outcomes.c.score_id)
                      .join(scores, scores.c.score_id == published.c.score_id))
        if account is not None:
            query = query.where(scores.c.account == account)
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query.order_by(published.c.posted_at,
                                                                   outcomes.c.age_hours))
                                 .mappings().all())
        return _with_utc(frame, ("recorded_at", "posted_at", "created_at"))


def _with_utc(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    for column in columns:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


class _Transaction:
    """`engine.begin()`, turning a database that cannot be written (locked past the timeout, gone) into an
    OutcomeError 503 that says so, never half a record."""

    def __init__(self, engine: Engine):
        self._context = engine.begin()

    def __enter__(self) -> Any:
        try:
            return self._context.__enter__()
        except OperationalError as e:
            raise _unavailable(e) from None

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._context.__exit__(*exc)
        except OperationalError as e:
            raise _unavailable(e) from None


def _unavailable(error: OperationalError) -> OutcomeError:
    log.error("outcome store write failed: %s", error)
    return OutcomeError(503, None, "the outcome store could not be written just now (busy or unreachable); "
                                   "nothing was recorded, retry shortly")


def alembic_config(url: str) -> Any:
    """Alembic's configuration for the store at `url` (what `python -m engage.outcomes upgrade` runs)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled connections (SQLAlchemy's QueuePool for a file) are shared by threads one at a time; each
        # transaction begins and ends on its connection, so none is handed on holding a lock.
        engine = create_engine(url,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first write

        return engine
    return create_engine(url, pool_pre_ping=True)
