"""Count and risk models on constructed data: they learn what is there and predict in the right units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.config import LightGBMSettings
from engage.errors import NotFittedError
from engage.model.estimators import CountModel, RiskModel
from engage.model.folds import MIN_CALIBRATION, conformal_margin, normalized_errors, scale_elasticity
from engage.model.targets import TARGETS, risk_labels

PARAMS = LightGBMSettings(n_estimators=200, learning_rate=0.1, num_leaves=7, min_child_samples=5,
                          early_stopping_rounds=20)


def _features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(3, 7, n)
    hashtags = rng.integers(0, 30, n).astype(float)
    frame = pd.DataFrame({
        "likes_baseline": baseline, "comments_baseline": baseline - 2,
        "followers": np.exp(baseline + 3), "hashtags": hashtags,
    })
    # Each hashtag over 10 costs 5% of the account's usual likes.
    y = baseline - 0.05 * np.maximum(hashtags - 10, 0) + rng.normal(0, 0.05, n)
    return frame, y


def test_count_model_learns_the_effect_relative_to_the_account_baseline():
    train, y_train = _features(600, 0)
    valid, y_valid = _features(200, 1)
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    probe = pd.DataFrame({"likes_baseline": [5.0, 5.0], "comments_baseline": [3.0, 3.0],
                          "followers": [np.exp(8.0)] * 2, "hashtags": [5.0, 28.0]})
    p = model.predict_log1p(probe)
    # The level is a tree fit of a noisy label on 600 rows: close, not exact; the difference is the uplift's.
    assert p["expected"][0] == pytest.approx(5.0, abs=0.25)
    assert p["expected"][0] - p["expected"][1] == pytest.approx(0.05 * 18, abs=0.15)
    assert np.all(p["low"] <= p["expected"]) and np.all(p["expected"] <= p["high"])


def test_count_model_interval_covers_about_its_nominal_share():
    train, y_train = _features(800, 2)
    valid, y_valid = _features(300, 3)
    test, y_test = _features(500, 4)
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    p = model.predict_log1p(test)
    coverage = np.mean((y_test >= p["low"]) & (y_test <= p["high"]))
    assert 0.6 <= coverage <= 0.95


def test_count_model_without_history_learns_the_level_from_followers():
    train, y_train = _features(1000, 5)
    # first posts: no history yet
    train.loc[train.index[::4], ["likes_baseline", "comments_baseline"]] = np.nan
    valid, y_valid = _features(200, 6)
    model = CountModel(TARGETS["likes"], PARAMS).fit(train, y_train, valid, y_valid)
    probe = pd.DataFrame({"likes_baseline": [np.nan], "comments_baseline": [np.nan],
                          "followers": [np.exp(9.0)], "hashtags": [0.0]})
    # followers = exp(baseline + 3): log followers 9 is a level of 6 (no hashtag penalty under 10 hashtags).
    assert model.predict_log1p(probe)["expected"][0] == pytest.approx(6.0, abs=0.2)


def test_count_model_splits_the_prediction_into_the_accounts_level_and_the_drafts_uplift():
    train, y_train = _features(800, 7)
    valid, y_valid = _features(200, 8)
    model = CountModel(TARGETS["likes"], PARAMS).fit(train, y_train, valid, y_valid)
    assert model.level_names_ == ["likes_baseline", "comments_baseline", "followers"]
    assert model.uplift_names_ == ["hashtags"]
    probe = pd.DataFrame({"likes_baseline": [5.0, 5.0], "comments_baseline": [3.0, 3.0],
                          "followers": [np.exp(8.0)] * 2, "hashtags": [5.0, 28.0]})
    p = model.predict_log1p(probe)
    np.testing.assert_allclose(p["expected"], p["level"] + p["uplift"])
    assert p["level"][0] == p["level"][1]  # the level never sees the draft
    # 28 hashtags cost 0.05 * 18 = 0.9 more than 5 do: the uplifts differ by that, the levels not at all.
    assert p["uplift"][0] - p["uplift"][1] == pytest.approx(0.9, abs=0.15)
    contributions = model.contributions(probe)
    np.testing.assert_allclose(contributions.sum(axis=1), p["expected"], atol=1e-6)


def _accounts(n_accounts: int, per_account: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Accounts whose level rises with their habit of
    hashtags, while inside each account more hashtags cost."""
    rng = np.random.default_rng(seed)
    account = np.repeat(np.arange(n_accounts), per_account)
    level = rng.uniform(3, 7, n_accounts)[account]
    hashtags = 3 * level + rng.normal(0, 2, len(account))
    frame = pd.DataFrame({"likes_baseline": level + rng.normal(0, 0.05, len(account)), "hashtags": hashtags})
    y = level - 0.1 * (hashtags - 3 * level) + rng.normal(0, 0.05, len(account))
    return frame, y, account


@pytest.mark.parametrize("objective", ["regression", "lambdarank"])
def test_the_uplift_learns_the_within_account_order_with_either_objective(objective):
    train, y_train, g_train = _accounts(120, 10, 9)
    valid, y_valid, g_valid = _accounts(30, 10, 10)
    test, y_test, g_test = _accounts(40, 10, 11)
    model = CountModel(TARGETS["likes"], PARAMS, objective=objective).fit(
        train, y_train, valid, y_valid, groups_train=g_train, groups_valid=g_valid)
    p = model.predict_log1p(test)
    # Within each account, more hashtags must mean a lower prediction, as in the data.
    same = g_test[:, None] == g_test[None, :]
    more = test["hashtags"].to_numpy()[:, None] > test["hashtags"].to_numpy()[None, :]
    assert np.mean((p["uplift"][:, None] < p["uplift"][None, :])[same & more]) > 0.9
    slope = np.polyfit(test["hashtags"] - 3 * test["likes_baseline"], p["uplift"], 1)[0]
    if objective == "lambdarank":  # its scores are put in log1p units: 10 more hashtags cost about 1.0
        assert slope == pytest.approx(-0.1, abs=0.04)
    else:  # the raw count also tells accounts apart, so the demeaned regression learns a shrunk slope
        assert -0.1 < slope < -0.01


def test_count_model_interval_is_calibrated_on_the_validation_slice():
    train, y_train = _features(1500, 12)
    valid, y_valid = _features(1000, 13)
    test, y_test = _features(3000, 14)
    # noisier than training: still covered
    y_test = y_test + np.random.default_rng(0).normal(0, 0.3, len(y_test))
    y_valid = y_valid + np.random.default_rng(1).normal(0, 0.3, len(y_valid))
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    p = model.predict_log1p(test)
    # set by the validation posts' noise (sd 0.3), not the training posts'
    assert np.median(p["high"] - p["expected"]) > 0.3
    assert np.mean((y_test >= p["low"]) & (y_test <= p["high"])) == pytest.approx(0.8, abs=0.03)
    np.testing.assert_allclose(p["high"] - p["expected"], model.half_width(test))
    np.testing.assert_allclose(p["expected"] - p["low"], model.half_width(test))


def test_conformal_margin_is_the_finite_sample_rank_of_the_errors():
    errors = np.arange(9, 0, -1, dtype=float)  # 9 .. 1
    assert conformal_margin(errors, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_margin(errors, 0.5) == 5.0
    assert conformal_margin(np.array([0.1, 0.3, 0.2]), 0.8) == 0.3  # too few for the rank: the largest
    assert conformal_margin(np.array([]), 0.8) == 0.0


def test_the_interval_is_set_on_errors_of_a_period_the_level_has_not_seen():
    """The validation and test posts come after a jump of +0.6 that only the post index announces: the
    cross-fitted level saw the validation period (other posts of it) and predicts it well; the margin comes
    from the level fitted on the training posts only, which
    missed the jump, as a model misses a new period."""
    def period(n: int, seed: int, later: bool) -> tuple[pd.DataFrame, np.ndarray]:
        frame, y = _features(n, seed)
        frame["n_earlier_posts"] = np.random.default_rng(seed).uniform(10, 14, n) if later else np.linspace(
            0, 9, n)
        return frame, y + (0.6 if later else 0.0)
    train, y_train = period(1500, 20, False)
    valid, y_valid = period(600, 21, True)
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    assert np.median(model.half_width(valid)) > 0.4
    # the level itself knows the jump
    assert np.mean(np.abs(model.predict_log1p(valid)["expected"] - y_valid)) < 0.2


def test_with_few_validation_posts_the_training_posts_out_of_fold_errors_join_the_calibration():
    train, y_train = _features(800, 22)
    valid, y_valid = _features(MIN_CALIBRATION - 5, 23)
    y_train = y_train + np.random.default_rng(2).normal(0, 0.5, len(y_train))  # the training posts are noisy
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    assert np.median(model.half_width(valid)) > 0.55  # the 15 quiet validation posts alone give 0.43


def test_dropping_a_family_removes_its_columns_and_without_history_the_level_is_the_mean():
    train, y_train = _features(400, 15)
    valid, y_valid = _features(100, 16)
    model = CountModel(TARGETS["likes"], PARAMS, drop=("history",)).fit(train, y_train, valid, y_valid)
    assert model.level_ is None and model.feature_names_ == ["hashtags"]
    probe = train.iloc[:3]
    # the mean over every post it was fitted on, training and validation
    assert np.all(
        model.predict_log1p(probe)["level"] == pytest.approx(np.mean(np.concatenate([y_train, y_valid]))))


def test_unfitted_models_refuse_to_predict():
    features = pd.DataFrame({"x": [1.0], "likes_baseline": [2.0], "followers": [100.0]})
    for call in (CountModel(TARGETS["likes"], PARAMS).predict_log1p,
                 CountModel(TARGETS["likes"], PARAMS).contributions):
        with pytest.raises(NotFittedError, match="likes model is not fitted: call fit"):
            call(features)
    for call in (RiskModel(PARAMS).predict_proba, RiskModel(PARAMS).contributions):
        with pytest.raises(NotFittedError, match="authenticity risk model is not fitted: call fit"):
            call(features)


def test_estimators_follow_the_scikit_learn_contract_parameters_in_init_learned_state_only_from_fit():
    """`__init__` stores its parameters as given; planning the fit (the LightGBM jobs for an engine, one
    `FitPlan` per stage: the level, then the uplift) sets nothing; only the end of `fit` sets the learned
    attributes (ending in `_`)."""
    posts, features = _posts_and_features()
    y = np.log1p(posts["saves"].to_numpy(dtype=float))
    groups = posts["account"].to_numpy()
    model = CountModel(TARGETS["saves"], PARAMS, interval=0.7, seed=3, folds=2)
    assert vars(model) == {"target": TARGETS["saves"], "params": PARAMS, "interval": 0.7, "seed": 3,
                           "folds": 2,
                           "folds_by": "account", "objective": "regression", "drop": (), "level_params": None,
                           "level_start": "none", "interval_scale": "adaptive"}
    plan = model.lightgbm_jobs(features.iloc[:100], y[:100], features.iloc[100:], y[100:], groups[:100],
                               groups[100:])
    # the whole level, one per fold, the prospective
    assert plan.stage == "level" and len(plan.jobs) == 1 + 2 + 1
    assert set(plan.learned) == {"level_names_", "uplift_names_", "feature_names_", "level_mean_"}
    stages = []
    while plan is not None:
        assert not [k for k in vars(model) if k.endswith("_")]  # nothing learned before the last stage ends
        stages.append(plan.stage)
        jobs = [job.materialized() for job in plan.jobs]  # each job's own rows of a shared frame
        model = model.finish([job.estimator.fit(job.train, job.y_train, **job.fit_params)
                              for job in jobs], plan)
        if plan.next is not None:
            assert len(plan.next.jobs) == 1  # the uplift, then the interval's scale
        last, plan = plan, plan.next
    assert stages == ["level", "uplift", "interval"]
    assert {k for k in vars(model) if k.endswith("_")} == {
        *last.learned, "uplift_", "uplift_scale_", "uplift_shift_", "interval_margin_", "interval_scale_",
        "interval_floor_", "interval_centre_", "interval_exponent_"}
    assert model.level_mean_ == pytest.approx(float(np.mean(y)))
    assert model.params is PARAMS and model.interval == 0.7 and model.seed == 3  # parameters never rewritten
    assert model.level_params is None
    assert np.isfinite(model.predict_log1p(features.iloc[:5])["expected"]).all()


def test_risk_model_ranks_the_cue_and_returns_calibrated_probabilities():
    rng = np.random.default_rng(7)

    def make(n):
        cue = rng.integers(0, 2, n).astype(float)
        noise = rng.normal(size=n)
        label = (rng.uniform(size=n) < np.where(cue == 1, 0.7, 0.1)).astype(float)
        return pd.DataFrame({"has_paid": cue, "noise": noise}), label

    (train, y_train), (valid, y_valid), (test, _) = make(800), make(400), make(2000)
    model = RiskModel(PARAMS).fit(train, y_train, valid, y_valid)
    prob = model.predict_proba(test)
    assert prob[test["has_paid"] == 1].mean() == pytest.approx(0.7, abs=0.08)
    assert prob[test["has_paid"] == 0].mean() == pytest.approx(0.1, abs=0.06)
    assert np.all((prob >= 0) & (prob <= 1))


def test_risk_labels_use_felt_fake_when_present_else_the_documented_proxy():
    posts = pd.DataFrame({"likes": [100, 5, 100],
                          "felt_fake": pd.array([True, False, None], dtype="boolean")})
    features = pd.DataFrame({"likes_baseline": [np.log1p(100)] * 3})
    labels, how = risk_labels(posts, features)
    assert list(labels[:2]) == [1.0, 0.0] and np.isnan(labels[2])
    assert "felt_fake" in how
    posts["felt_fake"] = pd.array([None, None, None], dtype="boolean")
    features.loc[2, "likes_baseline"] = np.nan
    labels, how = risk_labels(posts, features)
    assert labels[0] == 0.0  # at its baseline
    assert labels[1] == 1.0  # 5 likes against a baseline of 100: below a third
    assert np.isnan(labels[2])  # no baseline, no proxy label
    assert "proxy" in how


def test_risk_label_says_what_the_risk_model_learned_from_or_why_there_is_none():
    from engage.model.bundle import EngageModel
    from engage.model.targets import RISK_LABEL_PROXY

    info = {"labels": {"authenticity_risk": RISK_LABEL_PROXY}, "skipped_targets": {}}
    with_risk = EngageModel(None, None, {"authenticity_risk": object()}, pd.DataFrame(), None, None, info)
    assert with_risk.risk_label == RISK_LABEL_PROXY
    skipped = {"labels": {},
               "skipped_targets": {"authenticity_risk": "too few risk labels (4 known, 0 positive)"}}
    without = EngageModel(None, None, {}, pd.DataFrame(), None, None, skipped)
    assert without.risk_label == "no risk model: too few risk labels (4 known, 0 positive)"
# -- the registry carries the behaviour: a new count target is one entry ------------------------------------


def _posts_and_features(n_accounts: int = 4, per_account: int = 40,
                        seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A constructed population: saves rise with a `useful` feature, relative to each account's level."""
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for a in range(n_accounts):
        level = rng.uniform(2, 5)
        for i in range(per_account):
            useful = float(rng.integers(0, 2))
            saves = int(rng.poisson(np.exp(level + 0.8 * useful)))
            rows.append({"account": f"acc{a}", "post_id": f"a{a}p{i}", "likes": saves * 3, "saves": saves,
                         "posted_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=i)})
            feats.append({"useful": useful, "followers": 1000.0 * (a + 1), "saves_baseline": level + 0.4,
                          "likes_baseline": level + 1.5})
    posts = pd.DataFrame(rows)
    posts["saves"] = posts["saves"].astype("Int64")
    return posts, pd.DataFrame(feats)


def test_a_new_count_target_is_trained_evaluated_plotted_and_summarised_from_its_registry_entry_alone(
    monkeypatch):
    """A count the data set carries in a new column (`bookmarks`, which no target reads today) becomes a
    target with one registry entry: labels, fitting, metrics, plots and the summary come from it."""
    from engage import summary, training
    from engage.config import load_settings
    from engage.model import evaluation as ev
    from engage.model.targets import CountTarget

    posts, features = _posts_and_features()
    rng = np.random.default_rng(5)
    level = features["saves_baseline"].to_numpy() - 1.0  # each account's own bookmarking level
    bookmarks = rng.poisson(np.exp(level + 1.2 * features["useful"].to_numpy()))
    posts["bookmarks"] = pd.array(bookmarks, dtype="Int64")
    features["bookmarks_baseline"] = level + 0.3
    assert "bookmarks" not in {t.column for t in TARGETS.values()}
    registry = {"bookmarks": CountTarget("bookmarks", "bookmarks", "bookmarks_baseline", label="bookmarks",
                                         goal="content quality", description="posts kept in a collection")}
    monkeypatch.setattr(training, "TARGETS", registry)
    monkeypatch.setattr(summary, "TARGETS", registry)
    settings = load_settings(None, ["train.lightgbm.n_estimators=60", "train.lightgbm.min_child_samples=5"])
    split = ev.time_split(posts, 0.2, 0.15)
    labels, described, skipped = training._labels(posts, features)
    assert described == {"bookmarks": "log1p(bookmarks)"} and skipped == {}
    np.testing.assert_allclose(labels["bookmarks"], np.log1p(bookmarks))
    models = training.fit_targets(settings, features, labels, split)
    assert "bookmarks_baseline" in models["bookmarks"].feature_names_  # it starts from its own trailing level
    metrics, preds = training.evaluate(posts, features, labels, models, split)
    for key in ("test_bookmarks_mae_log1p", "test_bookmarks_spearman_relative",
                "test_bookmarks_interval_coverage",
                "baseline_bookmarks_mae_log1p", "baseline_bookmarks_spearman_within_account",
                "trailing_bookmarks_mae_log1p"):
        assert key in metrics, key
    assert metrics["test_bookmarks_spearman_relative"] > 0.4  # the useful feature is learned
    assert set(registry["bookmarks"].figures(preds["bookmarks"])) == {
        "plots/predicted_vs_actual_bookmarks.png", "plots/residuals_bookmarks.png"}
    table = summary.summary_table(training.TrainResult(metrics, "run", "1", "champion", "first", skipped, "",
                                                       "e"))
    assert "test_bookmarks_mae_log1p" in table and f"{metrics['baseline_bookmarks_mae_log1p']:.3f}" in table


def test_a_count_target_with_too_few_labels_is_skipped_with_the_reason():
    posts, features = _posts_and_features(n_accounts=1, per_account=30)
    posts["saves"] = posts["saves"].where(posts.index < 12)  # 12 known of 30
    _, _, why = TARGETS["saves"].labels(posts, features)
    assert why == "only 12 posts have saves counts (at least 20 needed)"
    posts["saves"] = pd.array([pd.NA] * len(posts), dtype="Int64")
    assert TARGETS["saves"].labels(posts, features)[2] == "the data set has no saves counts"


def test_each_count_model_sees_its_own_trailing_level_and_not_the_other_insight_levels():
    from engage.model.plans import model_columns

    columns = ["hashtags", "likes_baseline", "comments_baseline", "impressions_baseline", "saves_baseline",
               "follows_baseline"]
    assert model_columns(TARGETS["likes"], columns) == ["hashtags", "likes_baseline", "comments_baseline"]
    assert model_columns(TARGETS["saves"], columns) == ["hashtags", "likes_baseline", "comments_baseline",
                                                        "saves_baseline"]
    assert model_columns(TARGETS["authenticity_risk"], columns) == ["hashtags", "likes_baseline",
                                                                    "comments_baseline"]


def test_every_count_target_answers_counts_with_a_range():
    from engage.model.targets import COUNT_TARGETS

    assert COUNT_TARGETS == ("likes", "comments", "impressions", "reach", "saves", "shares", "profile_visits",
                             "follows",
                             "link_clicks")
    prediction = {"expected": np.log1p([99.0]), "low": np.log1p([49.0]), "high": np.log1p([199.0])}
    assert TARGETS["follows"].answer(prediction) == {"expected": 99.0, "low": 49.0, "high": 199.0}


def test_train_targets_chooses_targets_and_an_unknown_name_is_a_config_error():
    from engage import training
    from engage.errors import ConfigError

    posts, features = _posts_and_features()
    labels, _, skipped = training._labels(posts, features, ["saves"])
    assert list(labels) == ["saves"]
    assert skipped["likes"] == "not in train.targets"
    with pytest.raises(ConfigError, match=r"train.targets names unknown "
                       r"target\(s\) retweets; the registry has likes, comments"):
        training._labels(posts, features, ["saves", "retweets"])


class _ScoreColumn:
    """Stands in for a fitted count model: predicts the feature `score` (log1p units)."""

    def predict_log1p(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        v = features["score"].to_numpy(dtype=float)
        return {"expected": v, "low": v - 1, "high": v + 1}


def test_count_targets_log_the_draft_pair_accuracy_from_the_later_posts_scored_as_drafts():
    from engage.model import evaluation as ev

    posts = pd.DataFrame({"account": ["a"] * 4, "post_id": list("ABCD"),
        "posted_at": pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"), "likes": [1, 2, 3, 1]})
    y = np.log1p(posts["likes"].to_numpy(dtype=float))
    features = pd.DataFrame({"score": [0.0, 1.0, 2.0, 5.0], "likes_baseline": np.nan})
    split = ev.Split(train=np.array([0]), valid=np.array([], dtype=int), test=np.array([1, 2, 3]), how="test",
                     times=posts["posted_at"].to_numpy())
    # Pairs (1, 2) and (1, 3) and (2, 3); the later posts as
    # drafts score 3, 0 and 9 (not their logged 2, 5, 5).
    pairs = ev.DraftPairs(np.array([1, 1, 2]), np.array([2, 3, 3]), pd.DataFrame({"score": [3.0, 0.0, 9.0]}))
    metrics, _ = TARGETS["likes"].evaluate(_ScoreColumn(), features, y, posts, split, pairs)
    # (1, 2): likes 2 -> 3 up, drafts 1 -> 3 up: right; (1, 3): 2 -> 1 down, 1 -> 0 down: right;
    # (2, 3): 3 -> 1 down, 2 -> 9 up: wrong.
    assert metrics["test_likes_draft_pairs_7d"] == pytest.approx(2 / 3)
    assert metrics["test_likes_draft_pairs_7d_n"] == 3


def test_the_level_can_start_from_the_accounts_trailing_mean():
    rng = np.random.default_rng(17)
    def rows(n):
        baseline = rng.uniform(3, 9, n)
        return pd.DataFrame({"likes_baseline": baseline, "hashtags": rng.integers(0, 5, n).astype(float)}), \
            baseline + rng.normal(0, 0.02, n)
    train, y_train = rows(40)
    valid, y_valid = rows(20)
    model = CountModel(TARGETS["likes"], PARAMS, level_start="trailing").fit(train, y_train, valid, y_valid)
    probe = pd.DataFrame({"likes_baseline": [8.5, np.nan], "hashtags": [1.0, 1.0]})
    p = model.predict_log1p(probe)
    # 40 posts cannot teach trees a line from 3 to 9; starting from the trailing mean, the level is that mean.
    assert p["level"][0] == pytest.approx(8.5, abs=0.1)
    # No trailing mean (a first post): the start is the mean of the posts it was fitted on.
    assert p["level"][1] == pytest.approx(np.mean(np.concatenate([y_train, y_valid])), abs=0.3)
    np.testing.assert_allclose(model.contributions(probe).sum(axis=1), p["expected"], atol=1e-6)


def test_fold_jobs_share_one_frame_and_fit_what_their_own_copies_fit():
    """The level's fold and prospective jobs name their rows of one shared frame (five copies of the
    training posts side by side were gigabytes at a million posts) and give the models own copies give."""
    from engage.engine import fit_locally
    from engage.model.plans import fit_plan

    train, y_train = _features(600, 4)
    valid, y_valid = _features(200, 5)
    groups, groups_valid = np.repeat(np.arange(60), 10), np.repeat(np.arange(20), 10)
    plan = CountModel(TARGETS["likes"], PARAMS).lightgbm_jobs(train, y_train, valid, y_valid, groups,
                                                              groups_valid)
    level = plan.jobs
    assert len(level) == 7  # everything, five folds, the training posts only
    assert all(job.train is level[0].train for job in level)
    folds = plan.carry["folds"]
    assert [len(job.train_rows) for job in level[1:]] == [800 - len(held_out) for held_out in folds] + [600]
    assert all(len(job.y_train) == len(job.train_rows) for job in level[1:])

    def copies(jobs):  # each job on its own copy of its rows, as the jobs were built before
        return fit_locally([job.materialized() for job in jobs])

    shared = CountModel(TARGETS["likes"], PARAMS).fit(train, y_train, valid, y_valid, groups_train=groups,
                                                       groups_valid=groups_valid)
    copied = CountModel(TARGETS["likes"], PARAMS)
    fit_plan(copied, copied.lightgbm_jobs(train, y_train, valid, y_valid, groups, groups_valid), copies)
    test, _ = _features(100, 6)
    for key, values in shared.predict_log1p(test).items():
        np.testing.assert_array_equal(values, copied.predict_log1p(test)[key])


def _heteroscedastic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Posts of steady accounts (noise sd 0.1) and volatile ones (sd 0.6); the account's trailing spread
    (`likes_std`, a level feature) tells them apart, as the history features do on real data."""
    frame, y = _features(n, seed)
    rng = np.random.default_rng(seed + 100)
    volatile = rng.uniform(size=n) < 0.5
    sd = np.where(volatile, 0.6, 0.1)
    frame["likes_std"] = sd * rng.uniform(0.8, 1.2, n)
    return frame, y + rng.normal(0, 1, n) * sd


def test_the_adaptive_interval_is_narrow_for_steady_accounts_wide_for_volatile_ones_and_covers_its_share():
    train, y_train = _heteroscedastic(2000, 30)
    valid, y_valid = _heteroscedastic(800, 31)
    test, y_test = _heteroscedastic(4000, 32)
    volatile = test["likes_std"].to_numpy() > 0.3
    covered = {}
    for how in ("adaptive", "constant"):
        model = CountModel(TARGETS["likes"], PARAMS, interval=0.8, interval_scale=how).fit(
            train, y_train, valid, y_valid)
        p = model.predict_log1p(test)
        inside = (y_test >= p["low"]) & (y_test <= p["high"])
        covered[how] = (inside.mean(), inside[~volatile].mean(), inside[volatile].mean())
        half = p["high"] - p["expected"]
        np.testing.assert_allclose(p["expected"] - p["low"], half)  # symmetric in log1p
        if how == "adaptive":
            assert model.interval_scale_ is not None
            # steady accounts' ranges are several times narrower than volatile ones'
            assert np.median(half[~volatile]) * 3 < np.median(half[volatile])
        else:
            assert model.interval_scale_ is None
            np.testing.assert_allclose(half, model.interval_margin_)  # one margin for every post
    overall, steady, wild = covered["adaptive"]
    assert overall == pytest.approx(0.8, abs=0.03)
    # ... and about 80% within each kind of account, where one margin over-covers the steady accounts and
    # under-covers the volatile ones
    assert steady == pytest.approx(0.8, abs=0.06) and wild == pytest.approx(0.8, abs=0.06)
    assert covered["constant"][1] > 0.95 and covered["constant"][2] < 0.7


def test_the_adaptive_interval_with_nothing_to_tell_posts_apart_is_the_constant_margin():
    """Homoscedastic errors: the scale model learns (about) one scale, and the range is (about) the same
    width everywhere, with the same coverage as one margin."""
    train, y_train = _features(1500, 40)
    valid, y_valid = _features(600, 41)
    test, y_test = _features(3000, 42)
    noise = np.random.default_rng(3)
    y_train, y_valid, y_test = (y + noise.normal(0, 0.3, len(y)) for y in (y_train, y_valid, y_test))
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    p = model.predict_log1p(test)
    half = p["high"] - p["expected"]
    assert np.quantile(half, 0.9) / np.quantile(half, 0.1) < 1.5
    assert np.mean((y_test >= p["low"]) & (y_test <= p["high"])) == pytest.approx(0.8, abs=0.03)


def test_a_count_model_pickled_before_the_adaptive_interval_still_scores_with_its_one_margin():
    import pickle

    train, y_train = _features(600, 50)
    valid, y_valid = _features(200, 51)
    model = CountModel(TARGETS["likes"], PARAMS, interval_scale="constant").fit(train, y_train, valid,
                                                                                y_valid)
    old = pickle.loads(pickle.dumps(model))
    # what an older engage never set
    for name in ("interval_scale", "interval_scale_", "interval_floor_", "interval_centre_",
                 "interval_exponent_"):
        delattr(old, name)
    p = old.predict_log1p(valid)
    np.testing.assert_allclose(p["high"] - p["expected"], model.interval_margin_)
    np.testing.assert_allclose(p["expected"], model.predict_log1p(valid)["expected"])


def test_normalized_errors_are_the_absolute_errors_in_units_of_each_posts_scale():
    np.testing.assert_allclose(normalized_errors(np.array([-0.5, 0.2, 1.0]), np.array([0.5, 0.1, 2.0])),
                               [1.0, 2.0, 0.5])


def test_scale_elasticity_trusts_a_scale_only_as_far_as_the_calibration_errors_confirm_it():
    rng = np.random.default_rng(60)
    scales = rng.uniform(0.1, 1.0, 2000)
    proportional = scales * rng.normal(size=2000)  # errors grow with the scale: about 1
    assert 0.75 < scale_elasticity(proportional, scales) <= 1.0
    unrelated = 0.4 * rng.normal(size=2000)  # the scale tells nothing: 0
    assert scale_elasticity(unrelated, scales) == 0.0
    # few posts: the lower bound is wide, the scale is not trusted
    assert scale_elasticity(proportional[:MIN_CALIBRATION - 1], scales[:MIN_CALIBRATION - 1]) == 0.0
    assert scale_elasticity(proportional, np.full(2000, 0.5)) == 0.0  # one scale for all: nothing to follow


def test_a_scale_the_validation_posts_do_not_confirm_gives_one_margin():
    """The training posts' spread follows `likes_std` (the scale model learns it); on the validation and test
    posts it no longer does (the column shuffled): the validation errors do not grow with the scale, so the
    interval keeps one margin (as before the scale) and covers its share of the test posts."""
    train, y_train = _heteroscedastic(2000, 70)
    valid, y_valid = _heteroscedastic(600, 71)
    test, y_test = _heteroscedastic(3000, 72)
    noise = np.random.default_rng(4)
    for frame in (valid, test):
        frame["likes_std"] = noise.permutation(frame["likes_std"].to_numpy())
    model = CountModel(TARGETS["likes"], PARAMS, interval=0.8).fit(train, y_train, valid, y_valid)
    assert model.interval_scale_ is None and model.interval_exponent_ == 0.0
    p = model.predict_log1p(test)
    np.testing.assert_allclose(p["high"] - p["expected"], model.interval_margin_)
    assert np.mean((y_test >= p["low"]) & (y_test <= p["high"])) == pytest.approx(0.8, abs=0.03)
