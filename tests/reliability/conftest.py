"""Fixtures of the reliability tests: the session's smoke bundle, and the serving tests' helpers.

`serving_helpers` (tests/serving/) starts real `serve.py` processes and makes photos and bombs; these tests
reuse it rather than copy it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVING_TESTS = Path(__file__).resolve().parents[1] / "serving"
if str(SERVING_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVING_TESTS))


@pytest.fixture(scope="session")
def bundle(trained) -> Path:
    """The smoke model bundle exported by the session's one training run (tests/conftest.py)."""
    return Path(trained[1])
