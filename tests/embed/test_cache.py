"""The feature cache: round trips, atomic shards, resuming a killed run, refusing corrupt shards."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from engage.embed.cache import FeatureCache, cached_vectors, sanitise_namespace, text_sha256
from engage.files import file_sha256

NAMESPACE = "open_clip:ViT-B-32:laion2b_s34b_b79k"


def _vectors_for(keys: list[str], dim: int = 4) -> np.ndarray:
    """A deterministic vector per key, so that any mix-up of rows shows."""
    return np.array(
        [np.frombuffer(hashlib.sha256(k.encode()).digest()[:dim], dtype=np.uint8) for k in keys],
        dtype=np.float32
    )


class CountingCompute:
    def __init__(self, keys: list[str], fail_after_calls: int | None = None):
        self.keys = keys
        self.calls: list[list[int]] = []
        self.fail_after_calls = fail_after_calls

    def __call__(self, indices: list[int]) -> np.ndarray:
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("run killed")
        self.calls.append(list(indices))
        return _vectors_for([self.keys[i] for i in indices])

    @property
    def rows(self) -> int:
        return sum(len(c) for c in self.calls)


def test_put_then_get_round_trips_and_marks_misses(tmp_path):
    cache = FeatureCache(tmp_path, NAMESPACE)
    cache.put(["a", "b"], _vectors_for(["a", "b"]))
    vectors, found = FeatureCache(tmp_path, NAMESPACE).get(["b", "zzz", "a"])  # a fresh reader
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(vectors[[0, 2]], _vectors_for(["b", "a"]))
    assert np.isnan(vectors[1]).all()


def test_keys_that_are_all_new_to_a_filled_cache_are_misses(tmp_path):
    # A second data set over the same cache folder: none of its keys is stored yet (this raised IndexError).
    FeatureCache(tmp_path, NAMESPACE).put(["a", "b"], np.ones((2, 3)))
    vectors, found = FeatureCache(tmp_path, NAMESPACE).get(["c", "d", "e"])
    assert vectors.shape == (3, 3) and np.isnan(vectors).all() and not found.any()
    twos = lambda idx: np.full((len(idx), 3), 2.0)  # noqa: E731
    out = cached_vectors(["c", "a"], twos, FeatureCache(tmp_path, NAMESPACE))
    np.testing.assert_array_equal(out, [[2.0] * 3, [1.0] * 3])


def test_empty_cache_returns_all_misses_with_unknown_width(tmp_path):
    vectors, found = FeatureCache(tmp_path, "quality-v1").get(["x", "y"])
    assert vectors.shape == (2, 0) and not found.any()


def test_namespaces_are_separate_directories_even_when_they_sanitise_alike(tmp_path):
    FeatureCache(tmp_path, "a:b").put(["k"], np.ones((1, 2)))
    _, found = FeatureCache(tmp_path, "a_b").get(["k"])
    assert not found.any()
    assert sanitise_namespace("a:b") != sanitise_namespace("a_b")
    assert "/" not in sanitise_namespace("../../etc/passwd") and ".." not in sanitise_namespace("../x")


def test_second_run_over_the_same_data_computes_nothing(tmp_path):
    keys = [f"img-{i}" for i in range(10)]
    first = CountingCompute(keys)
    out1 = cached_vectors(keys, first, FeatureCache(tmp_path, NAMESPACE), chunk_size=4)
    assert first.rows == 10 and len(first.calls) == 3  # chunks of 4, 4, 2
    second = CountingCompute(keys)
    out2 = cached_vectors(keys, second, FeatureCache(tmp_path, NAMESPACE), chunk_size=4)
    assert second.calls == []
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(out1, _vectors_for(keys))


def test_only_new_keys_are_computed_and_rows_stay_aligned(tmp_path):
    cache = FeatureCache(tmp_path, NAMESPACE)
    cached_vectors(["a", "b"], CountingCompute(["a", "b"]), cache)
    keys = ["c", "a", "d", "b"]
    compute = CountingCompute(keys)
    out = cached_vectors(keys, compute, cache)
    assert compute.calls == [[0, 2]]
    np.testing.assert_array_equal(out, _vectors_for(keys))


def test_a_repeated_key_is_computed_once(tmp_path):
    keys = ["same", "other", "same"]
    compute = CountingCompute(keys)
    out = cached_vectors(keys, compute, FeatureCache(tmp_path, NAMESPACE))
    assert compute.calls == [[0, 1]]
    np.testing.assert_array_equal(out[0], out[2])


def test_order_computes_the_missing_keys_in_its_order_and_rows_stay_aligned(tmp_path):
    cache = FeatureCache(tmp_path, NAMESPACE)
    cached_vectors(["b"], CountingCompute(["b"]), cache)
    keys = ["a", "b", "c", "d", "a"]
    compute = CountingCompute(keys)
    out = cached_vectors(keys, compute, cache, chunk_size=2, order=[3.0, 0.0, 1.0, -2.0, 3.0])
    assert compute.calls == [[3, 2], [0]]  # "b" is cached; the repeated "a" once, last
    np.testing.assert_array_equal(out, _vectors_for(keys))


def test_a_killed_run_resumes_from_its_completed_chunks(tmp_path):
    keys = [f"img-{i}" for i in range(10)]
    killed = CountingCompute(keys, fail_after_calls=2)
    with pytest.raises(KeyboardInterrupt):
        cached_vectors(keys, killed, FeatureCache(tmp_path, NAMESPACE), chunk_size=3)
    resumed = CountingCompute(keys)
    out = cached_vectors(keys, resumed, FeatureCache(tmp_path, NAMESPACE), chunk_size=3)
    assert resumed.calls == [[6, 7, 8], [9]]
    np.testing.assert_array_equal(out, _vectors_for(keys))


def test_a_stray_temporary_file_from_a_killed_write_is_never_read(tmp_path):
    keys = ["a", "b", "c"]
    cache = FeatureCache(tmp_path, NAMESPACE)
    cache.put(["a"], _vectors_for(["a"]))
    # What a kill between open() and os.replace() leaves behind: half a shard under a temporary name.
    complete = next(cache.directory.glob("shard-*.npz")).read_bytes()
    (cache.directory / ".shard-deadbeef.npz.tmp").write_bytes(complete[: len(complete) // 2])
    compute = CountingCompute(keys)
    out = cached_vectors(keys, compute, FeatureCache(tmp_path, NAMESPACE))
    assert compute.calls == [[1, 2]]
    np.testing.assert_array_equal(out, _vectors_for(keys))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_arrays"])
def test_a_corrupt_shard_is_ignored_with_a_warning_naming_it(tmp_path, damage):
    cache = FeatureCache(tmp_path, NAMESPACE)
    cache.put(["a"], _vectors_for(["a"]))
    cache.put(["b"], _vectors_for(["b"]))
    shard = sorted(cache.directory.glob("shard-*.npz"))[0]
    data = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(data[: len(data) - 40])
    elif damage == "garbage":
        shard.write_bytes(b"\x00garbage" * 50)
    elif damage == "empty":
        shard.write_bytes(b"")
    else:
        np.savez(shard, keys=np.arange(3), vectors=np.ones(3))
    with pytest.warns(RuntimeWarning, match=rf"shard {shard}.* cannot be read.*computed again"):
        vectors, found = FeatureCache(tmp_path, NAMESPACE).get(["a", "b"])
    assert found.sum() == 1  # the intact shard is still used
    keys = ["a", "b"]
    compute = CountingCompute(keys)
    with pytest.warns(RuntimeWarning):
        out = cached_vectors(keys, compute, FeatureCache(tmp_path, NAMESPACE))
    assert compute.rows == 1
    np.testing.assert_array_equal(out, _vectors_for(keys))


def test_undecodable_rows_are_returned_but_not_remembered(tmp_path):
    keys = ["good", "broken"]

    def compute(indices: list[int]) -> np.ndarray:
        out = _vectors_for([keys[i] for i in indices])
        out[[keys[i] == "broken" for i in indices]] = np.nan
        return out

    out = cached_vectors(keys, compute, FeatureCache(tmp_path, NAMESPACE))
    assert np.isnan(out[1]).all() and not np.isnan(out[0]).any()
    _, found = FeatureCache(tmp_path, NAMESPACE).get(keys)
    assert found.tolist() == [True, False]


def test_vectors_of_another_width_are_refused(tmp_path):
    cache = FeatureCache(tmp_path, NAMESPACE)
    cache.put(["a"], np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"holds 4-d vectors, got 8-d.*own namespace"):
        FeatureCache(tmp_path, NAMESPACE).put(["b"], np.ones((1, 8)))


def test_put_refuses_keys_and_vectors_of_different_lengths(tmp_path):
    with pytest.raises(ValueError, match=r"got 2 keys and vectors of shape \(3, 4\)"):
        FeatureCache(tmp_path, NAMESPACE).put(["a", "b"], np.ones((3, 4)))


def test_no_temporary_files_remain_after_writes(tmp_path):
    cache = FeatureCache(tmp_path, NAMESPACE)
    for i in range(3):
        cache.put([f"k{i}"], np.ones((1, 2)))
    assert sorted(p.suffix for p in cache.directory.iterdir()) == [".npz"] * 3


def test_hashes_match_known_sha256_values(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # SHA-256("abc")
    assert file_sha256(path) == expected
    assert text_sha256("abc") == expected
    assert text_sha256("café") == hashlib.sha256("café".encode()).hexdigest()


def test_a_hash_collision_is_a_miss_never_another_keys_vector(tmp_path, monkeypatch):
    from engage.embed import cache as cache_module

    monkeypatch.setattr(cache_module, "key_hashes", lambda keys: np.zeros(len(keys), dtype=np.uint64))
    cache = FeatureCache(tmp_path, NAMESPACE)
    cache.put(["a"], _vectors_for(["a"]))
    vectors, found = FeatureCache(tmp_path, NAMESPACE).get(["b", "a"])
    assert found.tolist() == [False, True]
    np.testing.assert_array_equal(vectors[1], _vectors_for(["a"])[0])
    assert np.isnan(vectors[0]).all()


def test_the_cache_object_indexes_keys_and_reads_only_the_shards_asked_for(tmp_path, monkeypatch):
    writer = FeatureCache(tmp_path, NAMESPACE)
    for part in (["a", "b"], ["c"], ["d", "e"]):
        writer.put(part, _vectors_for(part))
    reader = FeatureCache(tmp_path, NAMESPACE)
    assert len(reader) == 5 and not any(isinstance(v,
                                                   np.ndarray) and v.ndim == 2 for v in vars(reader).values())
    opened = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda path, **kw: opened.append(path) or real_load(path, **kw))
    vectors, found = reader.get(["e", "zzz", "d"])
    assert found.tolist() == [True, False, True] and len(opened) == 1  # one shard holds both
    np.testing.assert_array_equal(vectors[[0, 2]], _vectors_for(["e", "d"]))


def test_fast_chunks_grow_up_to_the_maximum_and_rows_stay_aligned(tmp_path):
    keys = [f"k{i}" for i in range(40)] + ["k3", "k0"]
    compute = CountingCompute(keys)
    out = cached_vectors(keys, compute, FeatureCache(tmp_path, NAMESPACE), chunk_size=4, max_chunk_size=16)
    assert [len(c) for c in compute.calls] == [4, 8, 16, 12]
    np.testing.assert_array_equal(out, _vectors_for(keys))
