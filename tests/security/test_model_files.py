"""Model files are trusted only when engage can prove it made them (issue 22).

Before the change a bundle was one joblib pickle next to an unsigned manifest, so whoever could write the
bundle folder (or plant a folder named `models:/engage@champion`, or a checkpoint, or an ONNX file under the
cache) decided what ran. Each test plants such a file; a pickle whose load would create a file must never run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from engage.errors import ModelError
from engage.model.bundle import EngageModel


class CreatesAFile:
    """Unpickling this opens (so creates) `path`: a stand-in for any code a planted pickle could run."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def legacy_bundle(directory: Path, state: object) -> Path:
    """A bundle as engage wrote them before issue 22: bundle.joblib and an unsigned manifest of checksums."""
    directory.mkdir(parents=True)
    joblib.dump(state, directory / "bundle.joblib")
    for name in ("context.parquet", "context_vectors.npz", "settings.yaml"):
        (directory / name).write_bytes(b"x")
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}
    (directory / "manifest.json").write_text(json.dumps({"format": 1, "files": files}))
    return directory


def signed_bundle(directory: Path, state: object, key: bytes) -> Path:
    from engage.signing import save_signed

    directory.mkdir(parents=True)
    save_signed(directory, state, key, files={"context.parquet": b"x", "context_vectors.npz": b"x",
                                              "settings.yaml": b"{}", "feed.json": b"{}"},
                meta={"format": 2, "embedder": "e", "created": "now"})
    return directory


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("ENGAGE_MODEL_KEY_FILE", str(tmp_path / "config" / "model.key"))
    monkeypatch.delenv("ENGAGE_MODEL_KEY", raising=False)
    from engage.signing import model_key

    return model_key(create=True)


def test_a_planted_bundle_pickle_never_runs(tmp_path: Path, key: bytes) -> None:
    marker = tmp_path / "ran"
    bundle = legacy_bundle(tmp_path / "planted", {"pipeline": CreatesAFile(marker)})
    with pytest.raises(ModelError,
                       match=r"saved before engage signed its models .*python -m engage\.model\.trust"):
        EngageModel.load(bundle)
    assert not marker.exists()


def test_a_bundle_signed_with_another_key_is_refused_before_anything_is_unpickled(
    tmp_path: Path, key: bytes) -> None:
    marker = tmp_path / "ran"
    bundle = signed_bundle(tmp_path / "planted", {"pipeline": CreatesAFile(marker)},
                           b"an attacker's own key of 32 bytes")
    with pytest.raises(ModelError, match=r"is not signed with this machine's model key .* re-export it"):
        EngageModel.load(bundle)
    assert not marker.exists()


def test_an_edited_manifest_is_refused(tmp_path: Path, key: bytes) -> None:
    bundle = signed_bundle(tmp_path / "edited", {"norms": {}}, key)
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "state.pkl").write_bytes(b"other state")
    # digest updated, signature not
    manifest["files"]["state.pkl"] = hashlib.sha256(b"other state").hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="is not signed with this machine's model key"):
        EngageModel.load(bundle)


def test_a_file_linked_out_of_the_bundle_is_refused(tmp_path: Path, key: bytes) -> None:
    bundle = signed_bundle(tmp_path / "linked", {"norms": {}}, key)
    outside = tmp_path / "state-elsewhere.pkl"
    outside.write_bytes((bundle / "state.pkl").read_bytes())
    (bundle / "state.pkl").unlink()
    os.symlink(outside, bundle / "state.pkl")
    with pytest.raises(ModelError, match="outside the folder being read"):
        EngageModel.load(bundle)


def test_even_a_signed_pickle_resolves_nothing_but_model_classes(tmp_path: Path, key: bytes) -> None:
    from engage.signing import load_signed

    marker = tmp_path / "ran"
    bundle = signed_bundle(tmp_path / "signed-hostile", {"pipeline": CreatesAFile(marker)}, key)
    with pytest.raises(ModelError, match=r"refers to (io|_io)\.open"):
        load_signed(bundle, key, what=str(bundle), fix="retrain")
    assert not marker.exists()


def test_without_a_model_key_a_bundle_is_refused_with_where_to_put_the_key(tmp_path: Path, key: bytes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = signed_bundle(tmp_path / "b", {"norms": {}}, key)
    monkeypatch.setenv("ENGAGE_MODEL_KEY_FILE", str(tmp_path / "elsewhere" / "model.key"))
    with pytest.raises(ModelError, match=r"no model key .*elsewhere/model\.key.* Copy the key"):
        EngageModel.load(bundle)


def test_the_model_key_is_made_once_readable_by_its_owner_only(tmp_path: Path, key: bytes) -> None:
    from engage.signing import key_path, model_key

    assert len(key) == 64 and model_key(create=True) == key
    assert key_path().stat().st_mode & 0o077 == 0


def test_a_folder_named_like_the_registry_uri_does_not_shadow_the_registry(tmp_path: Path, key: bytes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.chdir(tmp_path)
    legacy_bundle(tmp_path / "models:" / "engage@champion", {"pipeline": CreatesAFile(marker)})
    with pytest.raises(ModelError, match=r"cannot load model 'models:/engage@champion' from tracking store"):
        EngageModel.from_uri("models:/engage@champion", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not marker.exists()


def test_booster_files_are_lightgbm_text_and_arrays_load_without_pickle(tmp_path: Path, key: bytes) -> None:
    import lightgbm as lgb

    from engage.signing import load_signed, save_signed

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=200)
    model = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(x, y)
    save_signed(tmp_path / "m", {"m": model, "w": np.arange(5.0)}, key)
    assert (tmp_path / "m" / "boosters" / "000.txt").read_text().startswith("tree\n")
    assert b"tree\nversion" not in (tmp_path / "m" / "state.pkl").read_bytes()
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as arrays:
        assert len(arrays.files) >= 1
    loaded, _, _ = load_signed(tmp_path / "m", key, what="m", fix="retrain")
    assert np.array_equal(loaded["m"].predict(x), model.predict(x)) and list(loaded["w"]) == [0, 1, 2, 3, 4]


# -- ONNX ----------------------------------------------------------------------------------------------------


def onnx_for(module: torch.nn.Module, folder: Path):
    from engage.embed.runtime import onnx_session

    return onnx_session(module, (torch.zeros(1, 4),), name="tiny", weights_id="tiny-weights",
                        input_names=["x"],
                        output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, directory=folder)


def test_a_planted_onnx_graph_gives_the_clean_answer(tmp_path: Path, key: bytes, caplog) -> None:
    from engage.embed.runtime import _export

    torch.manual_seed(0)
    clean, planted = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    with torch.no_grad():
        planted.weight.fill_(9.0)
    x = np.ones((1, 4), dtype=np.float32)
    expected = onnx_for(clean, tmp_path).run(None, {"x": x})[0]
    [path] = tmp_path.glob("tiny-*.onnx")
    hostile = _export(planted, (torch.zeros(1, 4),), ["x"], ["y"], {"x": {0: "n"}, "y": {0: "n"}})
    path.write_bytes(hostile)  # a valid graph that answers 36 for every input; its signature cannot be forged
    (path.parent / (path.name + ".sig")).write_text(hashlib.sha256(hostile).hexdigest())
    with caplog.at_level(logging.WARNING, logger="engage.embed.runtime"):
        again = onnx_for(clean, tmp_path).run(None, {"x": x})[0]
    assert np.allclose(again, expected) and not np.allclose(again, 36.0)
    assert "is not the one engage exported" in caplog.text
    assert path.read_bytes() != hostile  # replaced by a fresh export


# -- Ray checkpoints
# -------------------------------------------------------------------------------------------


def test_a_planted_or_old_ray_checkpoint_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import lightgbm as lgb

    from engage.distributed.boosting import load_estimators, save_estimators

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    model = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, y)
    run_key = os.urandom(32)
    save_estimators(tmp_path / "good", [model], run_key)
    [loaded] = load_estimators(tmp_path / "good", run_key)
    assert np.array_equal(loaded.predict(x), model.predict(x))

    marker = tmp_path / "ran"
    save_estimators(tmp_path / "planted", [CreatesAFile(marker)], os.urandom(32))  # not this run's key
    with pytest.raises(ModelError, match="Ray Train checkpoint .* is not signed .* train again"):
        load_estimators(tmp_path / "planted", run_key)
    (tmp_path / "old").mkdir()
    joblib.dump([CreatesAFile(marker)], tmp_path / "old" / "estimators.joblib")  # the format before issue 22
    with pytest.raises(ModelError, match="no readable manifest.json"):
        load_estimators(tmp_path / "old", run_key)
    assert not marker.exists()


# -- a model trained before the change ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_bundle_saved_before_signing_is_refused_then_converted_on_the_operators_word(
    trained, tmp_path: Path) -> None:
    from engage.model.trust import convert_legacy, main

    _, export = trained
    model = EngageModel.load(export)
    old = tmp_path / "old"
    old.mkdir()
    state = {"format": 1, "pipeline": model.pipeline, "models": model.models, "norms": model.norms,
             "info": model.info, "feed_photos": model.feed_photos}
    joblib.dump(state, old / "bundle.joblib")  # what EngageModel.save wrote before issue 22
    context = model.context_posts.copy()
    context.attrs = {}
    context.to_parquet(old / "context.parquet", index=False)
    np.savez(old / "context_vectors.npz", image=model.context_vectors.image,
             caption=model.context_vectors.caption,
             quality=model.context_vectors.quality)
    (old / "settings.yaml").write_bytes((export / "settings.yaml").read_bytes())
    files = {n: hashlib.sha256((old / n).read_bytes()).hexdigest()
             for n in ("bundle.joblib", "context.parquet", "context_vectors.npz", "settings.yaml")}
    (old / "manifest.json").write_text(json.dumps({"format": 1, "files": files, "embedder": model.embedder}))
    with pytest.raises(ModelError, match="convert it once with `python -m engage.model.trust"):
        EngageModel.load(old)
    assert main([str(old), "--out", str(tmp_path / "converted")]) == 0
    converted = EngageModel.load(tmp_path / "converted")
    from engage.model.draft import Draft
    from engage.scoring.scorer import Scorer

    draft = Draft(account=str(model.context_posts["account"].iloc[0]),
                  caption="Morning light on the harbour #sea")
    before, after = Scorer(model).score(draft), Scorer(converted).score(draft)
    for name in model.models:  # the same estimators give the same answers
        assert type(converted.models[name]) is type(model.models[name])
        assert getattr(after, name) == getattr(before, name), name
    with pytest.raises(ModelError, match="not 1: only bundles saved before model signing"):
        convert_legacy(tmp_path / "converted")

