"""`python -m engage.promote VERSION`: make a registered version the champion, the model `python serve.py` serves.

Training promotes a version by itself only over a champion trained on the same data (engage/training.py,
`choose_alias`); a version trained on other data (your own posts after the demo, say) stays `challenger` and
takes the alias `data-<fingerprint>`. This command moves `champion` (or `--alias`) to the version named, after
printing what the old and the new version were trained and evaluated on, so the choice is made knowingly.
A running server picks the new champion up on `POST /admin/reload` or `kill -HUP` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import sys

from engage.config import TrackingSettings
from engage.errors import EngageError


def describe(client, name: str, version: str) -> str:
    """One line: the version, its data (rows, accounts, fingerprint) and its likes metrics against the baseline."""
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    if run is None:
        return f"{name} v{version} (no run)"
    m, tags = run.data.metrics, run.data.tags
    mae, base = m.get("test_likes_mae_log1p"), m.get("baseline_likes_mae_log1p")
    figures = f"likes MAE {mae:.3f} vs account baseline {base:.3f}" if mae is not None and base is not None else "no likes MAE"
    return (f"{name} v{version}: run '{run.info.run_name}', data {tags.get('data_sha256', '?')[:12]}, "
            f"{int(m.get('n_train', 0)) + int(m.get('n_test', 0))} posts of {int(m.get('n_accounts', 0))} accounts, {figures}")


def promote(version: str, *, tracking_uri: str, name: str = "engage", alias: str = "champion") -> str:
    """Point `alias` at `version` of registered model `name`; returns what was done, in words."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        new = describe(client, name, version)
    except MlflowException as e:
        raise EngageError(f"{name} version {version} is not registered in {tracking_uri} ({str(e)[:200]}); "
                          f"list the versions with: mlflow ui --backend-store-uri {tracking_uri}") from e
    try:
        old_version = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        old_version = None
    if old_version == str(version):
        return f"{alias} is already {new}"
    client.set_registered_model_alias(name, alias, str(version))
    if alias == "champion":
        client.set_model_version_tag(name, str(version), "promoted_by", "python -m engage.promote")
    was = describe(client, name, old_version) if old_version is not None else "none"
    return f"{alias} is now {new}\n(was: {was})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engage.promote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="the registered version to promote (train.py's summary names it)")
    parser.add_argument("--tracking-uri", default=TrackingSettings().uri, help="MLflow tracking store (default: %(default)s)")
    parser.add_argument("--name", default=TrackingSettings().registered_model, help="registered model (default: %(default)s)")
    parser.add_argument("--alias", default="champion", help="the alias to move (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        print(promote(args.version, tracking_uri=args.tracking_uri, name=args.name, alias=args.alias))
    except EngageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("a running server serves it after: curl -X POST localhost:8000/admin/reload -H 'Authorization: Bearer ...' "
          "(or kill -HUP <pid of serve.py>)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
