"""Convert a model bundle saved before engage signed its models, once, on the operator's word.

    python -m engage.model.trust models/engage                 # rewrite it in place, signed
    python -m engage.model.trust old/engage --out models/engage

A bundle of format 1 is one joblib pickle that engage cannot prove it made, so `EngageModel.load` refuses it.
If you trained it (or otherwise trust whoever could write its folder), this command unpickles it -- which
runs whatever the pickle holds, so only for a bundle you trust -- after checking its files against its old
manifest (which catches corruption, not tampering), and saves it again in the signed format (boosters as
text, arrays as npz, the rest signed with this machine's model key; docs/security.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from engage.errors import EngageError, ModelError

LEGACY_FILES = ("bundle.joblib", "context.parquet", "context_vectors.npz", "settings.yaml")


def convert_legacy(directory: str | Path, out: str | Path | None = None) -> Path:
    """Load the format-1 bundle in `directory` (trusted by the
    caller) and save it signed to `out` (default: in place)."""
    import io

    import joblib

    from engage.model.bundle import LEGACY_FORMAT, EngageModel

    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(
            f"{directory} has no readable manifest.json ({e}); it is not an engage bundle") from e
    if manifest.get("format") != LEGACY_FORMAT:
        raise ModelError(
            f"{directory} is bundle format {manifest.get('format')}, not {LEGACY_FORMAT}: only bundles saved "
                         "before model signing need converting (a signed one from another machine needs that "
                         "machine's model key, see docs/security.md)")
    contents = {}
    for name in LEGACY_FILES:
        data = (directory / name).read_bytes()  # read once: the bytes checked are the bytes loaded
        if hashlib.sha256(data).hexdigest() != manifest.get("files", {}).get(name):
            raise ModelError(
                f"{directory} is corrupt: {name} does not match its checksum in manifest.json; retrain")
        contents[name] = data
    state = joblib.load(io.BytesIO(contents["bundle.joblib"]))  # the operator vouched for this pickle
    contents["feed.json"] = json.dumps(state.get("feed_photos") or {}).encode("utf-8")
    model = EngageModel._from_parts(directory, state, contents)
    return model.save(out or directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engage.model.trust", description=__doc__.splitlines()[0],
        epilog="Only for a bundle you trust: loading an old bundle runs its pickle.")
    parser.add_argument("bundle", help="the old (format 1) bundle directory")
    parser.add_argument("--out", default=None,
                        help="where to write the signed bundle (default: over the old one)")
    args = parser.parse_args(argv)
    try:
        written = convert_legacy(args.bundle, args.out)
    except (EngageError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{written}: signed with this machine's model key; serve it with python serve.py --model {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
