"""The static caption embedder: its table's arithmetic, its provenance checks and how it is chosen.

Most tests use a small hand-made table (four word pieces) placed where the embedder keeps its distilled
table, so they check the arithmetic exactly without a minute of distillation; one slow test distils the
real table from the installed MiniLM and compares it with model2vec's own encoder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engage.config import Settings, TextSettings
from engage.embed import static as static_text
from engage.embed.registry import make_text_embedder
from engage.embed.static import DIM, PROVENANCE, TABLE, StaticEmbedder
from engage.errors import EmbedderMismatchError
from engage.files import file_sha256

VOCAB = {"[PAD]": 0, "[UNK]": 1, "hello": 2, "world": 3}


def _write_table(folder, embedder_id: str, rows: np.ndarray) -> None:
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder.mkdir(parents=True)
    save_file({"embeddings": rows.astype(np.float32)}, str(folder / TABLE))
    tokenizer = Tokenizer(WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / PROVENANCE).write_text(json.dumps({"id": embedder_id,
                                                 "table_sha256": file_sha256(folder / TABLE)}))


@pytest.fixture
def table_rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(size=(len(VOCAB), DIM)).astype(np.float32)


@pytest.fixture
def embedder(tmp_path, table_rows) -> StaticEmbedder:
    made = StaticEmbedder(tmp_path)
    _write_table(made.folder, made.id, table_rows)
    return made


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_caption_is_the_normalised_mean_of_its_known_word_pieces(embedder, table_rows):
    out = embedder.embed(["hello world", "world", "hello zebra hello"])
    assert out.dtype == np.float32 and out.shape == (3, DIM)
    np.testing.assert_allclose(out[0], _unit(table_rows[2] + table_rows[3]), atol=1e-6)
    np.testing.assert_allclose(out[1], _unit(table_rows[3]), atol=1e-6)
    np.testing.assert_allclose(out[2], _unit(table_rows[2]), atol=1e-6)  # the unknown word adds nothing


def test_a_caption_without_known_word_pieces_gets_the_unk_row_never_nan(embedder, table_rows):
    out = embedder.embed(["", "zebra", "hello"])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], _unit(table_rows[1]), atol=1e-6)
    np.testing.assert_allclose(out[1], out[0])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_rows_do_not_depend_on_the_batch_they_are_embedded_in(embedder):
    captions = ["hello", "world hello", "", "world"] * 3
    embedder.batch_size = 5
    np.testing.assert_allclose(embedder.embed(captions), np.stack([embedder.embed([c])[0] for c in captions]),
                               atol=1e-6)


def test_the_id_names_the_source_weights_and_the_recipe(tmp_path):
    made = StaticEmbedder(tmp_path)
    weights = file_sha256(static_text._minilm_path() / "model.safetensors")
    assert made.id == static_text.static_embedder_id(weights)
    assert made.id.startswith(f"static:all-MiniLM-L6-v2:{weights[:12]}:m2v-pca{DIM}")
    assert str(made.folder).startswith(str(tmp_path / "static"))


def test_a_damaged_table_is_distilled_again_with_a_warning(tmp_path, table_rows, monkeypatch):
    made = StaticEmbedder(tmp_path)
    _write_table(made.folder, made.id, table_rows)
    (made.folder / TABLE).write_bytes(b"not a table")
    calls = []

    def fake_distill(source, out, embedder_id, weights_sha256):
        calls.append(embedder_id)
        _write_table(out, embedder_id, table_rows * 2)

    monkeypatch.setattr(static_text, "distill_table", fake_distill)
    with pytest.warns(RuntimeWarning, match="does not match the SHA-256"):
        out = made.embed(["hello"])
    assert calls == [made.id]
    np.testing.assert_allclose(out[0], _unit(table_rows[2]), atol=1e-6)
    assert not [p for p in made.folder.parent.iterdir() if p.name.endswith(".tmp")]  # no work folder left


def test_a_table_recorded_for_another_id_is_not_used(tmp_path, table_rows, monkeypatch):
    made = StaticEmbedder(tmp_path)
    _write_table(made.folder, "static:another-recipe", table_rows)
    monkeypatch.setattr(static_text, "distill_table",
                        lambda source, out, embedder_id, sha: _write_table(out, embedder_id, table_rows))
    with pytest.warns(RuntimeWarning, match="is not the provenance of"):
        made.embed(["hello"])
    assert json.loads((made.folder / PROVENANCE).read_text())["id"] == made.id


def test_text_embedder_static_is_built_in_the_feature_cache_folder(tmp_path):
    built = make_text_embedder(TextSettings(embedder="static"), cache_dir=tmp_path)
    assert isinstance(built, StaticEmbedder) and built.folder.parent == tmp_path / "static"


def test_a_fitted_pipeline_keeps_its_caption_embedder_when_auto_would_choose_another(tmp_path):
    from engage.features.pipeline import FeaturePipeline

    settings = Settings().model_copy(update={"features": Settings().features.model_copy(
        update={"cache_dir": str(tmp_path)})})
    pipeline = FeaturePipeline.from_settings(settings)
    pipeline.text_embedder_id_ = StaticEmbedder(tmp_path).id
    assert pipeline._text_settings().embedder == "static"
    pipeline.text_embedder_id_ = "minilm:all-MiniLM-L6-v2:128"
    assert pipeline._text_settings().embedder == "minilm"
    pipeline._image_embedder = object()  # no text tower; the image embedder is not what is tested here
    pipeline.text_embedder_id_ = "static:all-MiniLM-L6-v2:000000000000:m2v-old-recipe"
    with pytest.raises(EmbedderMismatchError, match="trained with text embedder"):
        _ = pipeline.text_embedder


@pytest.mark.slow
def test_the_distilled_table_embeds_as_model2vec_does(tmp_path):
    from model2vec import StaticModel

    made = StaticEmbedder(tmp_path)
    captions = ["Sunset at the beach #travel", "New serum, link in bio #ad #skincare", "ok"]
    ours = made.embed(captions)
    assert made.provenance["source_weights_sha256"] == file_sha256(
        static_text._minilm_path() / "model.safetensors")
    assert made.provenance["recipe"]["pca_dims"] == DIM
    reference = StaticModel.from_pretrained(str(made.folder)).encode(captions, use_multiprocessing=False)
    np.testing.assert_allclose((ours * reference).sum(axis=1), 1.0, atol=1e-5)
    # A second embedder on the same folder loads the table instead of distilling it.
    again = StaticEmbedder(tmp_path)
    np.testing.assert_allclose(again.embed(captions), ours)


def test_auto_embeds_captions_with_static_from_the_stated_table_size(tmp_path):
    from engage.features.pipeline import FeaturePipeline

    settings = Settings().model_copy(update={"text": TextSettings(static_from_posts=100)})
    pipeline = FeaturePipeline.from_settings(settings)
    pipeline._image_embedder = object()  # an image embedder without a text tower (EfficientNet)
    pipeline._table_posts = 99
    assert pipeline._text_settings().embedder == "auto"  # make_text_embedder: MiniLM
    pipeline._table_posts = 100
    assert pipeline._text_settings().embedder == "static"
    pipeline.text_embedder_id_ = "minilm:all-MiniLM-L6-v2:128"  # once fitted, the size no longer matters
    assert pipeline._text_settings().embedder == "minilm"


def test_auto_keeps_the_clip_text_tower_for_any_table_size():
    from engage.features.pipeline import FeaturePipeline

    class Clip:
        def embed_text(self, texts):  # pragma: no cover - only its presence is checked
            raise AssertionError

    pipeline = FeaturePipeline.from_settings(
        Settings().model_copy(update={"text": TextSettings(static_from_posts=10)}))
    pipeline._image_embedder = Clip()
    pipeline._table_posts = 1_000_000
    assert pipeline._text_settings().embedder == "auto"
