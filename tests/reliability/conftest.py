"""Fixtures of the reliability tests: the session's smoke bundle, and the serving tests' helpers.

`serving_helpers` (tests/serving/) starts real `serve.py` processes and makes photos and bombs; these tests
reuse it rather than copy it (pyproject.toml puts tests/serving on pytest's `pythonpath`).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bundle(trained) -> Path:
    """The smoke model bundle exported by the session's one training run (tests/conftest.py)."""
    return Path(trained[1])
