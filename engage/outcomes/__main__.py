"""python -m engage.outcomes: import outcomes from a later dump, log how right engage was, migrate the store.

    python -m engage.outcomes import dumps/anna.bakes --source instaloader --outcomes sqlite:///outcomes.db
    python -m engage.outcomes import export.csv --source insights --age-hours 168
    python -m engage.outcomes accuracy --model models:/engage@champion      # an MLflow run with the figures
    python -m engage.outcomes upgrade --outcomes postgresql+psycopg://engage@db/engage
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_OUTCOMES = "sqlite:///outcomes.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engage.outcomes", description=__doc__.split("\n")[0])
    parser.add_argument("--outcomes", default=DEFAULT_OUTCOMES,
        help=f"the outcome store's SQLAlchemy URL, as given to serve.py (default: {DEFAULT_OUTCOMES})")
    commands = parser.add_subparsers(dest="command", required=True)

    imp = commands.add_parser("import",
                              help="record the counts of a later dump's posts that match scored drafts",
        description="Posts are matched to scores by post id (a post recorded before) or by "
                              "photo and caption (engage/outcomes/importer.py).")
    imp.add_argument("path", help="an Instaloader dump directory, an insights export, or a posts table")
    imp.add_argument("--source", default="instaloader", choices=["instaloader", "insights", "table"],
                     help="what the path holds (default: instaloader)")
    imp.add_argument("--age-hours", type=float, default=None,
                     help="the age the counts were read at; default: from each post's time to --read-at")
    imp.add_argument("--read-at", default=None,
                     help="when the dump was taken (ISO 8601); default: its modification time")
    imp.add_argument("--account", default=None, help="the account of a single-account export or table")

    acc = commands.add_parser("accuracy",
                              help="log the accuracy figures (and a drift report) as an MLflow run")
    acc.add_argument("--account", default=None, help="one account (default: every account)")
    acc.add_argument("--age-hours", type=float, default=None,
                     help="compare at this age (default: each post's latest)")
    acc.add_argument("--model", default=None,
                     help="the model whose training posts the drift report compares recent "
                     "drafts with (MLflow URI or bundle directory); no drift report without it")
    acc.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="(default: sqlite:///mlflow.db)")
    acc.add_argument("--experiment", default="engage-outcomes", help="(default: engage-outcomes)")

    up = commands.add_parser("upgrade",
                             help="apply the store's schema migrations (also done when the store opens)")
    up.add_argument("--revision", default="head", help="(default: head)")
    return parser


def log_accuracy_run(store: Any, *, account: str | None, age_hours: float | None, model: str | None,
                     tracking_uri: str, experiment: str) -> dict[str, Any]:
    """One MLflow run of its own: the figures as metrics, the plot, and the drift report as artifacts."""
    import matplotlib.pyplot as plt
    import mlflow

    from engage.outcomes.accuracy import accuracy, accuracy_figure, comparable, points
    from engage.outcomes.drift import drafts_inputs, drift_markdown, drift_report, posts_inputs

    figures = accuracy(store, account, age_hours)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"accuracy {account or 'all accounts'}") as run:
        mlflow.set_tags({"kind": "outcome_accuracy", "account": account or "all",
                         "outcome_store": repr(store)})
        metrics = {"scored": figures["scored"], "published": figures["published"]}
        for target in figures["targets"]:
            for key in ("posts", "mae", "baseline_mae", "coverage", "ranked_right", "compared_right"):
                if target[key] is not None:
                    metrics[f"live_{target['target']}_{key}"] = float(target[key])
        mlflow.log_metrics(metrics)
        mlflow.log_dict({k: v for k, v in figures.items() if k != "points"}, "accuracy.json")
        long = points(comparable(store.outcomes_frame(account), age_hours))
        fig = accuracy_figure(long, f"engage vs outcomes: {account or 'every account'}")
        mlflow.log_figure(fig, "plots/predicted_vs_actual.png")
        plt.close(fig)
        if model is not None:
            from engage.model.bundle import EngageModel

            reference = EngageModel.from_uri(model, tracking_uri).context_posts
            drafts = store.scores_frame(account)
            if account is not None:
                reference = reference[reference["account"] == account]
            report = drift_report(posts_inputs(reference), drafts_inputs(drafts))
            mlflow.log_dict(report, "drift/report.json")
            mlflow.log_text(drift_markdown(report), "drift/report.md")
            mlflow.log_metric("drifted_columns", len(report["drifted"]))
        figures["run_id"] = run.info.run_id
    return figures


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engage.errors import EngageError
    from engage.outcomes.store import OutcomeStore

    try:
        store = OutcomeStore(args.outcomes)
        if args.command == "upgrade":
            store.upgrade(args.revision)
            print(f"{store}: at revision {store.revision()}")
        elif args.command == "import":
            from engage.outcomes.importer import import_outcomes

            read_at = datetime.fromisoformat(args.read_at) if args.read_at else None
            if read_at is not None and read_at.tzinfo is None:
                read_at = read_at.replace(tzinfo=UTC)
            report = import_outcomes(store, args.source, Path(args.path), age_hours=args.age_hours,
                                     read_at=read_at,
                                     account=args.account)
            print(report.summary())
        else:
            figures = log_accuracy_run(store, account=args.account, age_hours=args.age_hours,
                                       model=args.model,
                                       tracking_uri=args.tracking_uri, experiment=args.experiment)
            print(json.dumps({k: v for k, v in figures.items() if k != "points"}, indent=2, default=str))
    except EngageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
