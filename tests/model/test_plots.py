"""The plots a training run logs show what their file names say."""

from __future__ import annotations

import io
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd

from engage.training import _log_plots


class _RecordingMlflow:
    """Stands in for the mlflow module: keeps each logged figure's PNG bytes and its axes' titles."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.titles: dict[str, list[str]] = {}

    def log_figure(self, fig, path: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.files[path] = buffer.getvalue()
        self.titles[path] = [ax.get_title() for ax in fig.axes] + [
            fig._suptitle.get_text() if fig._suptitle else ""
        ]


def test_feature_importance_and_shap_summary_are_separate_figures():
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = 2 * features["a"].to_numpy() - features["c"].to_numpy() + rng.normal(scale=0.1, size=200)
    booster = lgb.LGBMRegressor(n_estimators=30, verbose=-1).fit(features, y)
    model = SimpleNamespace(model_=booster, feature_names_=list(features.columns))
    test = np.arange(150, 200)
    preds = {
        "likes": {
            "actual": y[test],
            "expected": booster.predict(features.iloc[test]),
            "baseline": np.zeros(50),
        }
    }
    recorder = _RecordingMlflow()
    _log_plots(recorder, {"likes": model}, features, preds, test)
    importance = recorder.files["plots/feature_importance_likes.png"]
    shap_png = recorder.files["plots/shap_summary_likes.png"]
    assert importance != shap_png
    # The importance chart holds its bar chart only; the SHAP chart holds the beeswarm (and its colour bar).
    assert recorder.titles["plots/feature_importance_likes.png"] == ["likes: feature importance", ""]
    assert "likes: SHAP summary (test)" in recorder.titles["plots/shap_summary_likes.png"]
    assert "likes: feature importance" not in recorder.titles["plots/shap_summary_likes.png"]
