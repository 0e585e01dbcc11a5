"""Outcomes from a later dump: the posts of an Instaloader dump, an insights export or a table, matched to the
drafts engage scored, their counts recorded at the age the dump was taken.

    import_outcomes(store, "instaloader", "dumps/anna.bakes", age_hours=None)  ->  ImportReport

A post is matched to a score by its post id when that post was linked before (a later age of a known
post), else by its photo and caption: among the account's scores that are not linked to a post yet and
were made before the post was published, those whose caption is the same (white space aside) and whose
photo is the same picture (perceptual hash within `MAX_PHOTO_DISTANCE` bits; a draft scored without a photo
matches on the caption alone, and only a post without a photo). When several scores match, the latest one
before publication wins: the draft as it was last scored. Posts that match no score were not scored by
engage and are counted, not recorded; a post that already has a record at that age is left as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from engage.data import load_posts
from engage.data.schema import OUTCOME_COUNTS
from engage.outcomes.store import (
    OutcomeError,
    OutcomeRecord,
    OutcomeStore,
    caption_hash,
    dhash_distance,
    photo_dhash,
)

log = logging.getLogger(__name__)

#: Bits two 64-bit photo hashes may differ by and still be the same picture (recompressed, resized).
MAX_PHOTO_DISTANCE = 8


@dataclass
class ImportReport:
    source: str
    path: str
    posts: int = 0
    by_post_id: int = 0
    by_photo_and_caption: int = 0
    recorded: int = 0
    unmatched: int = 0  # not scored by engage (or changed past recognition)
    already: list[str] = field(default_factory=list)  # post ids with a record at this age already
    refused: list[tuple[str, str]] = field(default_factory=list)  # (post id, why)

    def summary(self) -> str:
        parts = [f"{self.posts} posts in {self.source} {self.path}",
                 f"{self.recorded} outcomes recorded ({self.by_post_id} matched by post id, "
                 f"{self.by_photo_and_caption} by photo and caption)",
                 f"{self.unmatched} posts match no scored draft (not recorded)"]
        if self.already:
            parts.append(f"{len(self.already)} already recorded at that age (left as they were)")
        parts += [f"post {post}: {why}" for post, why in self.refused]
        return "; ".join(parts)


def _age(posted_at: pd.Timestamp, read_at: datetime, age_hours: float | None) -> float:
    if age_hours is not None:
        return float(age_hours)
    return round(max((pd.Timestamp(read_at) - posted_at).total_seconds() / 3600, 0.1), 1)


def match_scores(store: OutcomeStore, posts: pd.DataFrame, *,
                 progress: bool = True) -> list[tuple[int, str | None, str]]:
    """For each post (row position): the score id it matches
    (None: none) and how ("post_id", "photo_caption")."""
    frame = store.scores_frame()
    if frame.empty:
        return [(i, None, "") for i in range(len(posts))]
    linked = {str(p): str(s) for p,
              s in zip(frame["post_id"], frame["score_id"], strict=True) if isinstance(p, str)}
    free = frame[frame["post_id"].isna()]
    taken: set[str] = set()
    matches: list[tuple[int, str | None, str]] = []
    rows = tqdm(posts.itertuples(index=False), total=len(posts), desc="matching posts to scores", unit="post",
                disable=not progress or len(posts) < 200)
    for position, post in enumerate(rows):
        post_id = str(post.post_id)
        if post_id in linked:
            matches.append((position, linked[post_id], "post_id"))
            continue
        candidates = free[
            (free["account"] == post.account) & (free["caption_hash"] == caption_hash(post.caption))
                          & (free["created_at"] <= post.posted_at) & ~free["score_id"].isin(taken)]
        image = getattr(post, "image", None)
        post_hash = photo_dhash(image) if isinstance(image, str) and image and Path(image).is_file() else None
        chosen = None
        for candidate in candidates.sort_values("created_at", ascending=False).itertuples(index=False):
            draft_hash = candidate.photo_dhash if isinstance(candidate.photo_dhash, str) else None
            if draft_hash is None and post_hash is None:
                chosen = candidate
            elif draft_hash is not None and post_hash is not None and \
                    dhash_distance(draft_hash, post_hash) <= MAX_PHOTO_DISTANCE:
                chosen = candidate
            if chosen is not None:
                break
        if chosen is None:
            matches.append((position, None, ""))
        else:
            taken.add(chosen.score_id)
            matches.append((position, str(chosen.score_id), "photo_caption"))
    return matches


def import_outcomes(store: OutcomeStore, source: str, path: str | Path, *, age_hours: float | None = None,
                    read_at: datetime | None = None, account: str | None = None,
                    columns: dict[str, str] | None = None, progress: bool = True) -> ImportReport:
    """Record the counts of every post in the dump at `path` that matches a scored draft (see the module doc).

    The age of each record is `age_hours`, else the hours from its publication to `read_at` (default: when the
    dump was written, its modification time)."""
    options: dict[str, Any] = {}
    if account is not None:
        options["account"] = account
    if columns:
        options["columns"] = columns
    posts = load_posts(source, path, progress=False, **options)
    report = ImportReport(source=source, path=str(path), posts=len(posts))
    when = read_at or datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    for position, score_id, how in match_scores(store, posts, progress=progress):
        if score_id is None:
            report.unmatched += 1
            continue
        post = posts.iloc[position]
        counts: dict[str, int | None] = {name: int(post[name]) for name in OUTCOME_COUNTS
                                          if name in post and not pd.isna(post[name])}
        record = OutcomeRecord(score_id=score_id, post_id=str(post["post_id"]),
                               posted_at=post["posted_at"].to_pydatetime(),
                               age_hours=_age(post["posted_at"], when, age_hours), counts=counts)
        try:
            store.record_outcome(record, source=f"import:{source}")
        except OutcomeError as e:
            if e.field == "age_hours" and e.status == 409:
                report.already.append(str(post["post_id"]))
            else:
                report.refused.append((str(post["post_id"]), e.message))
            continue
        report.recorded += 1
        if how == "post_id":
            report.by_post_id += 1
        else:
            report.by_photo_and_caption += 1
    log.info(report.summary())
    return report
