"""The MLflow pyfunc face of an engage bundle, so `mlflow models serve` and `mlflow.pyfunc.load_model`
score drafts with exactly the object that `serve.py` loads."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class EngagePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the bundle artifact; `predict` takes one draft per row (see `input_example`)."""

    def load_context(self, context: Any) -> None:
        from engage.model.bundle import EngageModel

        self.model = EngageModel.load(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict_frame(model_input)


def input_example(posts: pd.DataFrame) -> pd.DataFrame:
    """Draft rows in the pyfunc's input format (image as base64 text, left out here to keep it small)."""
    return pd.DataFrame({
        "account": posts["account"].astype(str).tolist(),
        "caption": posts["caption"].astype(str).tolist(),
        "posted_at": [t.isoformat() for t in posts["posted_at"]],
        "followers": [float(f) if pd.notna(f) else float("nan") for f in posts["followers"]],
        "sponsored": [bool(s) if pd.notna(s) else False for s in posts["sponsored"]],
    })
