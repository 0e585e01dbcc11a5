"""One error hierarchy for engage.

Every message says what was wrong, where (file, row, field) and, where it helps, what to do.
Callers catch `EngageError` to tell a user's mistake from a bug.
"""

from __future__ import annotations


class EngageError(Exception):
    """Base class of every error engage raises on purpose."""


class DataError(EngageError, ValueError):
    """Input data that cannot be used as it is: names the file, the row and the field."""

    def __init__(self, message: str, *, file: object = None, row: object = None, field: str | None = None):
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        self.message = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigError(EngageError, ValueError):
    """A configuration file or override that is invalid."""


class EmbedderError(EngageError, RuntimeError):
    """An image or text embedder that cannot be built or loaded."""


class EmbedderMismatchError(EngageError, RuntimeError):
    """A model asked to score with an embedder different from the one it was trained with."""


class ModelError(EngageError, RuntimeError):
    """A model bundle that is missing, incomplete or unusable."""


class NotFittedError(EngageError, RuntimeError):
    """A learned stage (the feature pipeline, a target's model) used before `fit`."""


class DraftError(EngageError, ValueError):
    """A draft sent for scoring that cannot be scored; names the field."""

    def __init__(self, message: str, *, field: str):
        self.field = field
        self.message = message
        super().__init__(f"field '{field}': {message}")


def summarise_failures(failures: dict[str, str], shown: int = 10) -> str:
    """'name: why; ...' for the first `shown` failures, then '(and N more)': one line however many failed."""
    listed = "; ".join(f"{name}: {why}" for name, why in list(failures.items())[:shown])
    more = f" (and {len(failures) - shown} more)" if len(failures) > shown else ""
    return listed + more
