"""Model files engage can prove it made: a key outside the model folder, HMAC signatures, no free pickle.

A model bundle, a Ray Train checkpoint and an ONNX export are files that decide every score, and whoever can
write them (the bundle folder, `mlflow.db`, an MLflow server, shared checkpoint storage, the cache folder)
could otherwise make engage run their code or change its answers. So (docs/security.md):

* **The model key** (`model_key`) is 32 random bytes kept outside every model folder: `$ENGAGE_MODEL_KEY` (the
  key itself), else the file `$ENGAGE_MODEL_KEY_FILE`, else `~/.config/engage/model.key` (created, mode 0600,
  by the first training or export on the machine). Copy it to the machines that serve what this one trains.
* **Signed folders** (`save_signed` / `load_signed`): what can be written as data is written as data -- every
  LightGBM booster anywhere in the saved objects as its text model string (`boosters/NNN.txt`), every numeric
  array as `arrays.npz` (read with `allow_pickle=False`), the caller's own files (Parquet, YAML, npz) as they
  are -- and what is left (the object structure: engage's classes, scikit-learn's, small values) is one
  pickle, `state.pkl`. `manifest.json` lists every file's SHA-256 and carries an HMAC-SHA256 of itself under
  the key. Loading reads each file once, checks the signature and the digests on those bytes, and only then
  unpickles them -- with an unpickler that resolves nothing but classes of engage, scikit-learn, LightGBM,
  NumPy and pandas and a few plain builtins, in case a signed file were ever made from hostile objects.
* **Signed blobs** (`sign` / `verify`): an ONNX export is
  pinned by the HMAC of its bytes (engage/embed/runtime.py).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engage.bounded import read_bytes_bounded
from engage.errors import DataError, ModelError

MODEL_KEY_ENV = "ENGAGE_MODEL_KEY"
MODEL_KEY_FILE_ENV = "ENGAGE_MODEL_KEY_FILE"
STATE = "state.pkl"
ARRAYS = "arrays.npz"
BOOSTERS = "boosters"
MANIFEST = "manifest.json"
#: Largest file of a signed folder read (a bundle's context
#: vectors are the largest, a few MB per 1,000 posts).
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024

_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")


# -- the key ---------------------------------------------------------------------------------------------


def key_path() -> Path:
    """Where the model key file is: $ENGAGE_MODEL_KEY_FILE,
    else $XDG_CONFIG_HOME (~/.config)/engage/model.key."""
    if os.environ.get(MODEL_KEY_FILE_ENV):
        return Path(os.environ[MODEL_KEY_FILE_ENV]).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "engage" / "model.key"


def model_key(*, create: bool = False) -> bytes | None:
    """The model key: $ENGAGE_MODEL_KEY, else the key file (made on first use when `create`), else None."""
    if os.environ.get(MODEL_KEY_ENV):
        key = os.environ[MODEL_KEY_ENV].strip().encode()
        if len(key) < 32:
            raise ModelError(
                f"{MODEL_KEY_ENV} holds {len(key)} characters, too few to be a key; use 32 or more random "
                             "ones (python -c 'import secrets; print(secrets.token_hex(32))')")
        return key
    path = key_path()
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            return None
        return _create_key(path)
    except OSError as e:
        raise ModelError(
            f"the model key {path} cannot be read ({e.strerror or e}); fix its permissions or set "
                         f"{MODEL_KEY_ENV}") from e
    if len(key) < 32:
        raise ModelError(
            f"the model key {path} holds {len(key)} bytes, too few to be a key; delete it (engage makes a "
            "new one, and models signed with the old one must be re-exported) or restore the right one")
    return key


def _create_key(path: Path) -> bytes:
    """A new random key written atomically, readable by its owner only (a concurrent creator's key wins)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(32).encode()
    handle, temporary = tempfile.mkstemp(prefix=".model.key.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails if another process made the key first: use theirs
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        os.unlink(temporary)
    return key


def key_id(key: bytes) -> str:
    """A short public name of a key (which key signed a file), not the key."""
    return hashlib.sha256(b"engage model key id|" + key).hexdigest()[:16]


def sign(data: bytes, key: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verify(data: bytes, signature: str, key: bytes) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(sign(data, key), signature)


def require_key(what: str) -> bytes:
    key = model_key()
    if key is None:
        raise ModelError(
            f"{what} cannot be verified: this machine has no model "
            f"key ({MODEL_KEY_ENV}, or the file {key_path()}), "
            "so engage cannot prove it made it. Copy the key of "
            "the machine that trained it to that path (or set "
            f"{MODEL_KEY_ENV}), or train again here (docs/security.md)")
    return key


# -- pickle without boosters and arrays --------------------------------------------------------------------

#: What the restricted unpickler resolves: classes of these packages (and the functions NumPy pickles use).
_ALLOWED_PREFIXES = ("engage.", "sklearn.", "lightgbm.", "numpy.", "pandas.", "scipy.")
_ALLOWED = {
    ("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str",
                                    "bytes",
                                    "bytearray", "bool", "complex", "slice", "range", "object", "NoneType")
} | {("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "Counter"),
     ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"), ("datetime", "timezone"),
     ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "scalar"),
     ("numpy._core.multiarray", "scalar"),
     ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
     ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
     ("copyreg", "_reconstructor")}


class _Pickler(pickle.Pickler):
    """Every LightGBM booster becomes a text model string
    and every numeric array an .npz entry, by reference."""

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=5)
        self.boosters: list[str] = []
        self.arrays: dict[str, Any] = {}

    def persistent_id(self, obj: Any) -> Any:
        import numpy as np

        if type(obj).__module__.startswith("lightgbm") and type(obj).__name__ == "Booster":
            state = obj.__getstate__()  # LightGBM's own: its attributes, the model as a string in _handle
            model = state.pop("_handle", None) if "_handle" in state else state.pop("handle", None)
            self.boosters.append(model if isinstance(model, str) else obj.model_to_string(num_iteration=-1))
            return ("booster", len(self.boosters) - 1, state)
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject and obj.dtype.kind in "biufcmMSU":
            name = f"a{len(self.arrays)}"
            self.arrays[name] = obj
            return ("array", name)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, boosters: list[str], arrays: Mapping[str, Any], where: str):
        super().__init__(io.BytesIO(data))
        self.boosters, self.arrays, self.where = boosters, arrays, where

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and pid and pid[0] == "booster":
            import lightgbm as lgb

            _, index, state = pid
            booster = lgb.Booster.__new__(lgb.Booster)
            booster.__setstate__({**state, "_handle": self.boosters[index]})
            return booster
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "array":
            return self.arrays[pid[1]]
        raise pickle.UnpicklingError(f"{self.where}: unknown reference {str(pid)[:60]}")

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module,
                   name) in _ALLOWED or (module.startswith(_ALLOWED_PREFIXES) and not name.startswith("_"))
        if not allowed:
            raise pickle.UnpicklingError(
                f"{self.where}: refers to {module}.{name}, which a model never holds")
        found = super().find_class(module, name)
        if (module, name) not in _ALLOWED and not isinstance(found, type):
            raise pickle.UnpicklingError(
                f"{self.where}: refers to the function {module}.{name}, which a model never holds")
        return found


def pack(obj: Any) -> tuple[bytes, list[str], dict[str, Any]]:
    """(structure pickle, booster model strings, arrays) of `obj`."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.boosters, pickler.arrays


def unpack(data: bytes, boosters: list[str], arrays: Mapping[str, Any], where: str = "state.pkl") -> Any:
    return _Unpickler(data, boosters, arrays, where).load()


# -- signed folders ----------------------------------------------------------------------------------------


def _payload(manifest: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":")).encode()


def save_signed(directory: str | os.PathLike, obj: Any, key: bytes, *,
                files: Mapping[str, bytes | memoryview] | None = None,
                meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write `obj` (and the caller's `files`, name -> bytes)
    into `directory` with a signed manifest; returns it."""
    import numpy as np

    directory = Path(directory)
    data, boosters, arrays = pack(obj)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    contents: dict[str, bytes | memoryview] = {STATE: data, ARRAYS: buffer.getbuffer(), **(files or {})}
    for i, model in enumerate(boosters):
        contents[f"{BOOSTERS}/{i:03d}.txt"] = model.encode("utf-8")
    (directory / BOOSTERS).mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        (directory / name).write_bytes(content)
    manifest = {**(meta or {}),
                "files": {name: hashlib.sha256(c).hexdigest() for name, c in contents.items()},
                "boosters": len(boosters), "key_id": key_id(key)}
    manifest["signature"] = sign(_payload(manifest), key)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def read_manifest(directory: str | os.PathLike, fix: str) -> dict[str, Any]:
    directory = Path(directory)
    try:
        manifest = json.loads(read_bytes_bounded(directory / MANIFEST, root=directory, max_bytes=1024 * 1024))
    except DataError as e:
        raise ModelError(f"{directory} has no readable {MANIFEST} ({e.message}); {fix}") from e
    except ValueError as e:
        raise ModelError(f"{directory / MANIFEST} is corrupt ({e}); {fix}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelError(f"{directory / MANIFEST} is corrupt (no file list); {fix}")
    return manifest


def load_signed(directory: str | os.PathLike, key: bytes, *, what: str, fix: str,
                manifest: dict[str, Any] | None = None) -> tuple[Any, dict[str, bytes], dict[str, Any]]:
    """(the saved object, the verified bytes of every other file, the manifest) of a signed folder.

    Refused with a `ModelError` saying what to do (`fix`): a manifest not signed with `key` (edited, planted
    or made elsewhere), a file missing, changed, linked out of the folder or not a regular file. Each file is
    read once; what is checked is what is used."""
    import numpy as np

    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory, fix)
    if not verify(_payload(manifest), manifest.get("signature", ""), key):
        signer = manifest.get("key_id")
        raise ModelError(
            f"{what} is not signed with this machine's model key "
            f"({key_path() if not os.environ.get(MODEL_KEY_ENV) else MODEL_KEY_ENV}, "
            f"key id {key_id(key)}; "
            f"{'it names key id ' + str(signer) if signer else 'it names no key'}): it was edited, "
            f"planted, or made on another machine, and is not loaded. {fix}")
    contents: dict[str, bytes] = {}
    for name, digest in manifest["files"].items():
        if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name:
            raise ModelError(
                f"{what}: its manifest names a file {str(name)[:60]!r} outside the folder; {fix}")
        path = directory / name
        if not path.exists() and not path.is_symlink():
            raise ModelError(f"{what} is incomplete: {name} is missing; {fix}")
        try:
            data = read_bytes_bounded(path, root=directory, max_bytes=MAX_FILE_BYTES,
                                      max_decoded=MAX_FILE_BYTES)
        except DataError as e:
            raise ModelError(f"{what} is altered: {e}; {fix}") from e
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelError(f"{what} is corrupt: {name} does not match its checksum in {MANIFEST}; {fix}")
        contents[name] = data
    for needed in (STATE, ARRAYS):
        if needed not in contents:
            raise ModelError(f"{what} is incomplete: {needed} is missing; {fix}")
    boosters = [contents.pop(f"{BOOSTERS}/{i:03d}.txt").decode("utf-8")
                for i in range(int(manifest.get("boosters", 0)))]
    with np.load(io.BytesIO(contents.pop(ARRAYS)), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    try:
        obj = unpack(contents.pop(STATE), boosters, arrays, where=f"{what}: {STATE}")
    except (pickle.UnpicklingError, AttributeError, ImportError, KeyError, IndexError, TypeError,
            EOFError) as e:
        raise ModelError(f"{what} cannot be loaded ({type(e).__name__}: {e}); {fix}") from e
    return obj, contents, manifest
