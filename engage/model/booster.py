"""LightGBM prediction at serving speed: the booster called on the feature matrix, its columns by position.

The estimators (engage/model/estimators.py) predict through `predict_booster` for training and scoring alike.
"""

from __future__ import annotations

import functools
import weakref

import lightgbm as lgb
import numpy as np
import pandas as pd

#: Rows up to which a prediction runs in one thread: waking LightGBM's OpenMP threads costs more than a
#: few rows of trees (0.2 ms against 0.05 ms for one row), and a request scores one draft.
SINGLE_THREAD_ROWS = 64
_FEATURE_NAMES: weakref.WeakKeyDictionary[lgb.Booster, tuple[str, ...]] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=256)
def _positions(columns: tuple[str, ...], names: tuple[str, ...]) -> np.ndarray | None:
    """Where each of a model's features sits in a table's columns (None: the same columns in order)."""
    if columns == names:
        return None
    where = {column: k for k, column in enumerate(columns)}
    missing = [name for name in names if name not in where]
    if missing:
        raise ValueError(f"features missing for the model: {', '.join(missing[:5])}")
    return np.array([where[name] for name in names], dtype=np.intp)


def predict_booster(model: lgb.LGBMModel, features: pd.DataFrame, **kwargs: bool) -> np.ndarray:
    """Booster prediction on the feature matrix, its columns picked by position.

    One draft is scored by some thirty LightGBM calls (three per count target, risk, contributions): the
    scikit-learn wrapper's DataFrame checks and pandas column selection cost a millisecond each, the trees
    a twentieth of that, so the matrix is taken once and the column positions are cached per column list.
    """
    booster = model.booster_
    names = _FEATURE_NAMES.get(booster)
    if names is None:
        names = _FEATURE_NAMES[booster] = tuple(booster.feature_name())
    matrix = features.to_numpy(dtype=np.float64)
    # tolist: iterating an Arrow index is slow
    positions = _positions(tuple(features.columns.tolist()), names)
    if positions is not None:
        matrix = matrix[:, positions]
    threads = 1 if len(matrix) <= SINGLE_THREAD_ROWS else 0  # 0: LightGBM's default (all cores)
    return np.asarray(booster.predict(matrix, num_threads=threads, **kwargs))
