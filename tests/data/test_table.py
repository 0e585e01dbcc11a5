"""Loading posts from a CSV or Parquet table with canonical
column names: values, and every bad-table error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engage.data import load_posts
from engage.errors import DataError

HEADER = "account,post_id,posted_at,caption,likes,comments,followers,image,is_video,sponsored"


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "posts.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROWS = (
    "anna,p1,2024-05-01T18:30:00Z,Sourdough #baking,120,8,1520,img/p1.jpg,no,false",
    "anna,p2,1714654800,\"Lemon tart, finally\",75,,1520,/abs/p2.jpg,false,",
    "ben,p3,2024-05-03 09:15:00,,48,5,,,yes,true",
)


def test_csv_loads_exact_values_with_iso_and_epoch_dates(tmp_path: Path) -> None:
    posts = load_posts("table", _csv(tmp_path, *GOOD_ROWS),
                       images_dir=tmp_path / "photos").set_index("post_id")
    assert posts.loc["p1", "posted_at"] == pd.Timestamp("2024-05-01 18:30:00", tz="UTC")
    assert posts.loc["p2", "posted_at"] == pd.Timestamp("2024-05-02 13:00:00", tz="UTC")  # epoch 1714654800
    assert posts.loc["p3", "posted_at"] == pd.Timestamp("2024-05-03 09:15:00", tz="UTC")  # naive means UTC
    assert list(posts["likes"]) == [120, 75, 48]
    assert list(posts["caption"]) == ["Sourdough #baking", "Lemon tart, finally", ""]
    assert list(posts["account"]) == ["anna", "anna", "ben"]
    assert posts.loc["p3", "followers"] is pd.NA
    assert [bool(v) for v in posts["is_video"]] == [False, False, True]
    assert posts.loc["p1", "sponsored"] == False  # noqa: E712 (numpy bool)
    assert posts.loc["p2", "sponsored"] is pd.NA
    assert posts.loc["p3", "sponsored"] == True  # noqa: E712


def test_missing_comments_are_na_not_zero(tmp_path: Path) -> None:
    posts = load_posts("table", _csv(tmp_path, *GOOD_ROWS)).set_index("post_id")
    assert str(posts["comments"].dtype) == "Int64"
    assert posts.loc["p2", "comments"] is pd.NA
    assert (posts.loc["p1", "comments"], posts.loc["p3", "comments"]) == (8, 5)


def test_relative_image_paths_resolve_against_images_dir(tmp_path: Path) -> None:
    posts = load_posts("table", _csv(tmp_path, *GOOD_ROWS),
                       images_dir=tmp_path / "photos").set_index("post_id")
    assert posts.loc["p1", "image"] == str(tmp_path / "photos" / "img" / "p1.jpg")
    assert posts.loc["p2", "image"] == "/abs/p2.jpg"
    assert posts.loc["p3", "image"] is None


def test_extra_columns_are_ignored_and_reported(tmp_path: Path) -> None:
    path = _csv(tmp_path, "anna,p1,2024-05-01T18:30:00Z,hi,3,web,0.5",
                header="account,post_id,posted_at,caption,likes,source,score")
    posts = load_posts("table", path)
    assert list(posts.columns) == [
        "account", "post_id", "posted_at", "caption", "likes", "comments", "followers", "image", "is_video",
        "sponsored", "felt_fake", "impressions", "reach", "saves", "shares", "profile_visits", "follows",
        "link_clicks",
    ]
    assert posts.attrs["report"].ignored_columns == ["source", "score"]
    assert "extra columns ignored: source, score" in posts.attrs["report"].summary()
    assert posts["comments"].isna().all()


def test_parquet_loads_epoch_integers_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "posts.parquet"
    pd.DataFrame({
        "account": ["anna", "anna"],
        "post_id": ["p1", "p2"],
        "posted_at": [1714588200, 1714654800],
        "caption": ["a", None],
        "likes": [120, 0],
        "comments": [8.0, None],
        "image": ["p1.jpg", None],
        "is_video": [False, True],
        "sponsored": [True, None],
        "felt_fake": [None, False],
        "extra": [1, 2],
    }).to_parquet(path)
    posts = load_posts("table", path, images_dir=tmp_path).set_index("post_id")
    assert list(posts["posted_at"]) == [pd.Timestamp("2024-05-01 18:30:00", tz="UTC"),
                                        pd.Timestamp("2024-05-02 13:00:00", tz="UTC")]
    assert list(posts["likes"]) == [120, 0]
    assert (posts.loc["p1", "comments"], posts.loc["p2", "comments"]) == (8, pd.NA)
    assert list(posts["caption"]) == ["a", ""]
    assert (posts.loc["p1", "image"], posts.loc["p2", "image"]) == (str(tmp_path / "p1.jpg"), None)
    assert [bool(v) for v in posts["is_video"]] == [False, True]
    assert posts.loc["p1", "sponsored"] == True  # noqa: E712
    assert posts.loc["p2", "felt_fake"] == False  # noqa: E712
    assert posts.attrs["report"].ignored_columns == ["extra"]


def test_rows_are_sorted_by_account_then_time(tmp_path: Path) -> None:
    path = _csv(tmp_path, "ben,b1,2024-05-02,x,1", "anna,a2,2024-05-03,x,1", "anna,a1,2024-05-01,x,1",
                header="account,post_id,posted_at,caption,likes")
    assert list(load_posts("table", path)["post_id"]) == ["a1", "a2", "b1"]


# --- bad tables: each error names the file, the row and the field -------------------------------------

OK = ("anna,p1,2024-05-01,a,1", "anna,p2,2024-05-02,b,2")
SHORT = "account,post_id,posted_at,caption,likes"


def test_missing_required_column_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "anna,p1,2024-05-01,a", header="account,post_id,posted_at,caption")
    with pytest.raises(DataError, match=r"posts\.csv: missing required column\(s\) likes"):
        load_posts("table", path)


def test_negative_like_count_is_an_error_naming_row_and_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p3,2024-05-03,c,-4", header=SHORT)
    with pytest.raises(DataError, match=r"posts\.csv, row 3, field 'likes': is negative"):
        load_posts("table", path)


def test_non_numeric_likes_is_an_error_naming_row_and_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p3,2024-05-03,c,lots", header=SHORT)
    with pytest.raises(DataError, match=r"row 3, field 'likes': 'lots' is not a number"):
        load_posts("table", path)


def test_fractional_like_count_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p3,2024-05-03,c,2.5", header=SHORT)
    with pytest.raises(DataError, match=r"row 3.*likes.*not a whole number"):
        load_posts("table", path)


def test_missing_like_count_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p3,2024-05-03,c,", header=SHORT)
    with pytest.raises(DataError, match=r"row 3, field 'likes': is missing"):
        load_posts("table", path)


def test_unparseable_date_is_an_error_naming_row_and_field(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p3,last tuesday,c,3", header=SHORT)
    with pytest.raises(DataError, match=r"row 3, field 'posted_at': 'last tuesday' is not a date"):
        load_posts("table", path)


def test_duplicate_post_id_is_an_error_naming_both_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, "anna,p1,2024-05-03,c,3", header=SHORT)
    with pytest.raises(DataError,
                       match=r"row 3, field 'post_id': duplicate post_id 'p1' \(first seen in row 1\)"):
        load_posts("table", path)


def test_empty_account_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, *OK, ",p3,2024-05-03,c,3", header=SHORT)
    with pytest.raises(DataError, match=r"row 3, field 'account': is empty"):
        load_posts("table", path)


def test_bad_boolean_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "anna,p1,2024-05-01,a,1,maybe", header=SHORT + ",sponsored")
    with pytest.raises(DataError, match=r"row 1, field 'sponsored': 'maybe' is not true/false"):
        load_posts("table", path)


def test_negative_likes_in_parquet_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "posts.parquet"
    pd.DataFrame({"account": ["a"] * 3, "post_id": ["1", "2", "3"], "posted_at": [1, 2, 3],
                  "likes": [1, 2, -1]}).to_parquet(path)
    with pytest.raises(DataError, match=r"posts\.parquet, row 3, field 'likes': is negative"):
        load_posts("table", path)


def test_missing_file_unknown_extension_and_unset_path_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: does not exist"):
        load_posts("table", tmp_path / "nope.csv")
    (tmp_path / "posts.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"posts\.xlsx: has an unknown extension"):
        load_posts("table", tmp_path / "posts.xlsx")
    with pytest.raises(DataError, match=r"data\.path is not set"):
        load_posts("table", None)


def test_unknown_source_is_an_error() -> None:
    with pytest.raises(DataError, match=r"unknown data source 'excel'"):
        load_posts("excel", "x")


def _dated(tmp_path: Path, *dates: str) -> Path:
    rows = [f"anna,p{i},{date},caption {i},{10 * i},1,100,,no,false" for i, date in enumerate(dates, start=1)]
    return _csv(tmp_path, *rows, name="dated.csv")


def test_a_slashed_date_column_is_read_one_way_decided_from_all_its_values(tmp_path: Path) -> None:
    # Read cell by cell, 03/04 and 05/04 were month-first (4 March, 4 May) and 20/04 day-first (20 April).
    posts = load_posts("table",
                       _dated(tmp_path, "03/04/2024", "05/04/2024 18:30", "20/04/2024")).set_index("post_id")
    assert posts.loc["p1", "posted_at"] == pd.Timestamp("2024-04-03", tz="UTC")
    assert posts.loc["p2", "posted_at"] == pd.Timestamp("2024-04-05 18:30", tz="UTC")
    assert posts.loc["p3", "posted_at"] == pd.Timestamp("2024-04-20", tz="UTC")
    assert ("posted_at read as DD/MM/YYYY, day first for every row, as "
            "row 3 (20/04/2024) shows") in posts.attrs["report"].summary()
    month_first = load_posts("table", _dated(tmp_path, "04/03/2024", "12/31/2023")).set_index("post_id")
    assert month_first.loc["p1", "posted_at"] == pd.Timestamp("2024-04-03", tz="UTC")
    assert "MM/DD/YYYY, month first" in month_first.attrs["report"].summary()


def test_a_date_column_that_reads_both_ways_is_an_error_naming_rows_and_the_option(tmp_path: Path) -> None:
    path = _dated(tmp_path, "2024-04-01T10:00:00Z", "03/04/2024", "05/04/2024", "07/07/2024")
    with pytest.raises(
        DataError, match=r"field 'posted_at': dates such as row 2 \(03/04/2024\), row 3 \(05/04/2024\) read "
        r"both day-first and month-first.*set data.date_format to day-first or month-first"):
        load_posts("table", path)
    posts = load_posts("table", path, date_format="month-first").set_index("post_id")
    assert posts.loc["p2", "posted_at"] == pd.Timestamp("2024-03-04", tz="UTC")
    assert "(data.date_format)" in posts.attrs["report"].summary()
    assert load_posts("table", path,
                      date_format="day-first").set_index("post_id").loc["p3", "posted_at"] == pd.Timestamp(
        "2024-04-05", tz="UTC")


def test_a_strptime_date_format_reads_every_cell_and_names_a_cell_it_does_not_fit(tmp_path: Path) -> None:
    posts = load_posts("table", _dated(tmp_path, "03.04.2024 18h30", "05.04.2024 07h00"),
                       date_format="%d.%m.%Y %Hh%M")
    assert list(posts["posted_at"]) == [pd.Timestamp("2024-04-03 18:30", tz="UTC"),
                                        pd.Timestamp("2024-04-05 07:00", tz="UTC")]
    with pytest.raises(
        DataError, match=r"row 2, field 'posted_at': '2024-04-05' is not a date: use the data.date_format"):
        load_posts("table", _dated(tmp_path, "03.04.2024 18h30", "2024-04-05"), date_format="%d.%m.%Y %Hh%M")


def test_a_column_mixing_day_first_and_month_first_dates_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"fit neither day-first nor month-first: row 1 \(04/20/2024\) put a value over 12 "
                                        r"second and row 2 \(20/04/2024\) first"):
        load_posts("table", _dated(tmp_path, "04/20/2024", "20/04/2024"))


def test_the_load_report_says_how_iso_and_epoch_dates_were_read(tmp_path: Path) -> None:
    posts = load_posts("table", _csv(tmp_path, *GOOD_ROWS))
    assert "posted_at read as ISO 8601 and epoch seconds" in posts.attrs["report"].summary()
