"""Who is champion: the registry's aliases, as training sets them and as `python -m engage.promote VERSION`
moves them (the champion is the model `python serve.py` serves).

Training promotes a version by itself only over a champion trained on the same data (`choose_alias`, called
by engage/training.py at the end of every run); a version trained on other data (your own posts after the
demo, say) stays `challenger` and takes the alias `data-<fingerprint>`. This command moves `champion` (or
`--alias`) to the version named, after printing what the old and the new version were trained and evaluated
on, so the choice is made knowingly. A running server picks the new champion up on `POST /admin/reload` or
`kill -HUP` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from engage.config import TrackingSettings
from engage.errors import EngageError
from engage.model.targets import TARGETS

#: The metric every new model version is compared on before it may become champion.
CHAMPION_METRIC = "test_likes_spearman_relative"


def _no_champion(error: Exception) -> bool:
    """Whether MLflow's error says that the alias (or the registered model) does not exist."""
    from mlflow.exceptions import MlflowException

    if not isinstance(error, MlflowException):
        return False
    # A missing alias is INVALID_PARAMETER_VALUE ("alias champion
    # not found"); a missing model, RESOURCE_DOES_NOT_EXIST.
    return error.error_code == "RESOURCE_DOES_NOT_EXIST" or (
        error.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(error)
    )


def baseline_verdict(metrics: dict[str, float]) -> tuple[bool | None, str]:
    """Whether the model beats each account's own average (the account baseline) on its test split, by MAE
    of log1p counts, for every count target, and the sentence that says so. None when no target has both."""
    worse: list[str] = []
    better: list[str] = []
    for name in TARGETS:
        model, base = metrics.get(f"test_{name}_mae_log1p"), metrics.get(f"baseline_{name}_mae_log1p")
        if model is None or base is None or not (np.isfinite(model) and np.isfinite(base)):
            continue
        (better if model < base else worse).append(f"{name} (MAE {model:.3f} vs {base:.3f})")
    if not worse and not better:
        return None, "no count target has both a model and an account-baseline MAE"
    if not worse:
        return True, f"beats the account baseline on {', '.join(better)}"
    count = "that count" if len(worse) == 1 else "those counts"
    return False, (
        "no better than the account baseline (each account's mean) on "
        + ", ".join(worse)
        + f": for {count}, each account's own average predicts as well"
        + (f". It is better on {', '.join(better)}" if better else "")
    )


def _beats_likes_baseline(metrics: dict[str, Any]) -> bool | None:
    model, base = metrics.get("test_likes_mae_log1p"), metrics.get("baseline_likes_mae_log1p")
    if model is None or base is None or not (np.isfinite(model) and np.isfinite(base)):
        return None
    return bool(model < base)


def data_alias(data_hash: str) -> str:
    """The alias of the best version trained on one data set:
    `data-` and the first 12 hex digits of its fingerprint."""
    return f"data-{data_hash[:12]}"


def _holder(client: Any, name: str, alias: str) -> tuple[Any | None, str | None]:
    """(the version holding `alias`, None) or (None, why it
    could not be read); (None, None) when none holds it."""
    try:
        return client.get_model_version_by_alias(name, alias), None
    except Exception as e:  # only "there is no such alias" is an empty place; a registry that fails is not
        if _no_champion(e):
            return None, None
        return None, f"{type(e).__name__}: {str(e)[:200]}"


def _better_than(
    client: Any, holder: Any, alias: str, metrics: dict[str, float], data_hash: str
) -> tuple[bool, str]:
    """Whether a new version with `metrics` on data `data_hash` should take `alias` from `holder`, and why."""
    run = client.get_run(holder.run_id) if holder.run_id else None
    if run is None:
        return True, f"{alias} v{holder.version} has no run to compare with"
    if run.data.tags.get("data_sha256") != data_hash:
        return False, (
            f"{alias} v{holder.version} was evaluated on other data (fingerprint differs); "
            "compare on the same data before promoting"
        )
    old = run.data.metrics.get(CHAMPION_METRIC)
    new = metrics.get(CHAMPION_METRIC, float("nan"))
    new_beats, old_beats = _beats_likes_baseline(metrics), _beats_likes_baseline(run.data.metrics)
    if new_beats is False and old_beats:
        return False, (
            f"it is no better than the account baseline on likes (MAE {metrics['test_likes_mae_log1p']:.3f} "
            f"vs {metrics['baseline_likes_mae_log1p']:.3f}) and {alias} v{holder.version} is"
        )
    if old_beats is False and new_beats:
        return True, f"it beats the account baseline on likes and {alias} v{holder.version} did not"
    if old is None or np.isnan(old) or (not np.isnan(new) and new > old):
        return True, f"{CHAMPION_METRIC} {new:.4f} beats {alias} v{holder.version} ({old})"
    return False, f"{CHAMPION_METRIC} {new:.4f} does not beat {alias} v{holder.version} ({old:.4f})"


def choose_alias(
    client: Any, name: str, version: str, metrics: dict[str, float], data_hash: str
) -> tuple[str, str]:
    """champion when none exists, or when this version is better than it on the same data: it beats the
    account baseline on likes where the champion does not, else (both or neither do) it beats CHAMPION_METRIC.
    A version no better than the account baseline never takes the place of a champion that is."""
    champion, failure = _holder(client, name, "champion")
    if failure is not None:
        return "challenger", (
            f"the champion could not be read ({failure}); registered as challenger: compare and "
            "promote by hand (python -m engage.promote) once the registry answers"
        )
    if champion is None:
        return "champion", "no champion existed"
    better, why = _better_than(client, champion, "champion", metrics, data_hash)
    return ("champion" if better else "challenger"), why


def choose_data_alias(client: Any, name: str, metrics: dict[str, float], data_hash: str) -> tuple[bool, str]:
    """Whether the new version takes its data's alias (`data_alias`): the best version on this data set."""
    alias = data_alias(data_hash)
    holder, failure = _holder(client, name, alias)
    if failure is not None:
        return False, f"{alias} could not be read ({failure})"
    if holder is None:
        return True, "the first version trained on this data"
    return _better_than(client, holder, alias, metrics, data_hash)


def describe(client, name: str, version: str) -> str:
    """One line: the version, its data (rows, accounts,
    fingerprint) and its likes metrics against the baseline."""
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    if run is None:
        return f"{name} v{version} (no run)"
    m, tags = run.data.metrics, run.data.tags
    mae, base = m.get("test_likes_mae_log1p"), m.get("baseline_likes_mae_log1p")
    figures = (
        f"likes MAE {mae:.3f} vs account baseline {base:.3f}"
        if mae is not None and base is not None
        else "no likes MAE"
    )
    return (
        f"{name} v{version}: run '{run.info.run_name}', data {tags.get('data_sha256', '?')[:12]}, "
        f"{int(m.get('n_train', 0)) + int(m.get('n_test', 0))} "
        f"posts of {int(m.get('n_accounts', 0))} accounts, {figures}"
    )


def promote(version: str, *, tracking_uri: str, name: str = "engage", alias: str = "champion") -> str:
    """Point `alias` at `version` of registered model `name`; returns what was done, in words."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        new = describe(client, name, version)
    except MlflowException as e:
        raise EngageError(
            f"{name} version {version} is not registered in {tracking_uri} ({str(e)[:200]}); "
            f"list the versions with: mlflow ui --backend-store-uri {tracking_uri}"
        ) from e
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
    parser = argparse.ArgumentParser(
        prog="python -m engage.promote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("version", help="the registered version to promote (train.py's summary names it)")
    parser.add_argument(
        "--tracking-uri", default=TrackingSettings().uri, help="MLflow tracking store (default: %(default)s)"
    )
    parser.add_argument(
        "--name", default=TrackingSettings().registered_model, help="registered model (default: %(default)s)"
    )
    parser.add_argument("--alias", default="champion", help="the alias to move (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        print(promote(args.version, tracking_uri=args.tracking_uri, name=args.name, alias=args.alias))
    except EngageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        "a running server serves it after: curl -X POST "
        "localhost:8000/admin/reload -H 'Authorization: Bearer ...' "
        "(or kill -HUP <pid of serve.py>)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
