"""Loading a professional account's insights: CSV exports
(old and current column names) and Graph API JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engage.config import load_settings
from engage.data import load_posts
from engage.errors import DataError
from engage.training import load_training_posts

# The columns of one_account_insights_176 (values made up here; the real table never enters the repository).
OLD_HEADER = ("Date,Impressions,From Home,From Hashtags,From Explore,From Other,Saves,Comments,Shares,Likes,"
              "Profile Visits,Follows,Conversion Rate,Caption,Hashtags")
OLD_ROWS = (
    "2022-01-03,3920,2586,1028,250,56,98,9,5,162,35,2,5.7,Five "
    "charts every analyst should know.,#data #python",
    "2022-01-04,5394,2727,1838,751,78,194,7,14,224,48,10,20.8,Project ideas on healthcare data,#health #data",
    "2022-01-05,4021,2085,1188,0,748,41,11,1,131,62,12,19.4,Train a model #ml,#ml",
)
# The current Meta Business Suite post export (Insights -> Content -> Export data).
NEW_HEADER = (
    "Post ID,Account ID,Account username,Account name,Description,Duration (sec),Publish time,Permalink,"
              "Post type,Data comment,Date,Views,Reach,Likes,Shares,Follows,Comments,Saves,Profile visits")
NEW_ROWS = (
    '18011,178414,Anna.Bakes,Anna Bakes,Sourdough crumb shot #bread,0,05/01/2024 18:30,'
    'https://www.instagram.com/p/C6abc/,IG image,,Lifetime,"1,204",980,120,4,3,8,31,22',
    '18012,178414,anna.bakes,Anna Bakes,Morning story,15,05/02/2024 '
    '07:00,,IG story,,Lifetime,300,250,0,0,0,0,0,1',
    '18013,178414,anna.bakes,Anna Bakes,Lemon tart reel,21,05/03/2024 12:00,'
    'https://www.instagram.com/reel/C6xyz/,IG reel,,Lifetime,5400,4100,310,40,9,25,88,61',
)


def _write(tmp_path: Path, name: str, header: str, rows: tuple[str, ...] | list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_an_export_with_the_old_columns_loads_every_count_and_says_where_the_account_came_from(
    tmp_path: Path) -> None:
    posts = load_posts("insights", _write(tmp_path, "my_insights.csv", OLD_HEADER, OLD_ROWS))
    assert list(posts["impressions"]) == [3920, 5394, 4021]
    assert list(posts["saves"]) == [98, 194, 41]
    assert list(posts["shares"]) == [5, 14, 1]
    assert list(posts["profile_visits"]) == [35, 48, 62]
    assert list(posts["follows"]) == [2, 10, 12]
    assert list(posts["likes"]) == [162, 224, 131]
    assert list(posts["comments"]) == [9, 7, 11]
    assert posts["reach"].isna().all() and posts["link_clicks"].isna().all()
    assert set(posts["account"]) == {"my_insights"}
    assert posts["posted_at"].iloc[0] == pd.Timestamp("2022-01-03", tz="UTC")
    # Hashtags join the caption (the hashtag features read it); already-present tags are not repeated.
    assert posts["caption"].iloc[0] == "Five charts every analyst should know.\n#data #python"
    assert posts["caption"].iloc[2] == "Train a model #ml"
    report = posts.attrs["report"]
    assert report.ignored_columns == ["From Home", "From Hashtags", "From Explore", "From Other",
                                      "Conversion Rate"]
    assert "account 'my_insights' from the file name" in report.summary()
    assert "set data.account" in report.summary()


def test_the_current_meta_export_maps_views_publish_time_and_post_type_and_skips_stories(
    tmp_path: Path) -> None:
    posts = load_posts("insights", _write(tmp_path, "export.csv", NEW_HEADER, NEW_ROWS)).set_index("post_id")
    assert list(posts.index) == ["18011", "18013"]  # the story row is not a feed post
    assert posts.loc["18011", "impressions"] == 1204  # "1,204": thousands separator
    assert posts.loc["18013", "reach"] == 4100
    assert posts.loc["18013", "profile_visits"] == 61
    assert posts.loc["18011", "posted_at"] == pd.Timestamp("2024-05-01 18:30", tz="UTC")
    assert [bool(v) for v in posts["is_video"]] == [False, True]
    assert set(posts["account"]) == {"anna.bakes"}  # usernames are case-insensitive
    report = posts.attrs["report"]
    assert "Date (Publish time used for posted_at)" in report.ignored_columns
    assert "Account name (Account username used for account)" in report.ignored_columns
    assert {"Account ID", "Duration (sec)", "Data comment"} <= set(report.ignored_columns)
    assert report.skipped == {"stories (rows 2): not feed posts": 1}


def test_column_names_match_ignoring_case_spaces_and_underscores(tmp_path: Path) -> None:
    path = _write(tmp_path, "odd.csv", " PUBLISH_TIME ,likes, Profile_VISITS ,saves,link clicks",
                  ["2024-05-01T10:00:00Z,5,7,2,3"])
    posts = load_posts("insights", path)
    assert (posts["profile_visits"].iloc[0], posts["saves"].iloc[0],
            posts["link_clicks"].iloc[0]) == (7, 2, 3)


def test_the_account_comes_from_the_config_when_the_file_names_none(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", OLD_HEADER, OLD_ROWS)
    settings = load_settings(None, ["data.source=insights", f"data.path={path}", "data.account=data.clever"])
    posts = load_training_posts(settings)
    assert set(posts["account"]) == {"data.clever"}
    assert "account 'data.clever' from data.account" in posts.attrs["report"].summary()


def test_a_config_account_that_contradicts_the_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", NEW_HEADER, NEW_ROWS)
    with pytest.raises(DataError, match=r"names account\(s\) anna.bakes "
                       r"in its 'Account username' column but data.account is 'ben'"):
        load_posts("insights", path, account="ben")


@pytest.mark.parametrize(("row", "field", "message"), [
    ("2022-01-04,5394,2727,1838,751,78,-4,7,14,224,48,10,20.8,x,#a", "Saves", "is negative"),
    ("2022-01-04,5394,2727,1838,751,78,194,7,14,lots,48,10,20.8,x,#a", "Likes", "'lots' is not a number"),
    ("someday,5394,2727,1838,751,78,194,7,14,224,48,10,20.8,x,#a", "Date", "'someday' is not a date"),
])
def test_a_bad_row_names_the_file_the_row_and_the_column_as_the_file_spells_it(
    tmp_path: Path, row: str, field: str,
                                                                                message: str) -> None:
    path = _write(tmp_path, "export.csv", OLD_HEADER, [OLD_ROWS[0], row])
    with pytest.raises(DataError, match=rf"file .*export.csv, row 2, field '{field}': {message}"):
        load_posts("insights", path)


def test_row_numbers_in_errors_count_the_file_rows_even_after_a_skipped_story(tmp_path: Path) -> None:
    rows = list(NEW_ROWS)
    rows[2] = rows[2].replace(",88,61", ",-88,61")  # Saves of the third data row
    with pytest.raises(DataError, match=r"row 3, field 'Saves': is negative"):
        load_posts("insights", _write(tmp_path, "export.csv", NEW_HEADER, rows))


def test_an_export_without_likes_says_which_names_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has no column for likes \(looked for 'Likes', 'Like count'\)"):
        load_posts("insights", _write(tmp_path, "export.csv", "Date,Impressions", ["2022-01-01,5"]))


# -- Graph API responses saved as files --------------------------------------------------------------------


def _json(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _graph_dump(root: Path) -> Path:
    _json(root / "media_page1.json", {"data": [
        {"id": "1790001", "caption": "Crumb shot #bread", "like_count": 120, "comments_count": 8,
         "timestamp": "2024-05-01T18:30:00+0000", "media_type": "IMAGE",
         "permalink": "https://www.instagram.com/p/A1/"},
        {"id": "1790002", "caption": "Tart reel", "like_count": 310, "comments_count": 25,
         "timestamp": "2024-05-03T12:00:00+0000", "media_type": "VIDEO",
         "insights": {"data": [{"name": "reach", "period": "lifetime", "values": [{"value": 4100}]},
                               {"name": "views", "period": "lifetime", "values": [{"value": 5400}]}]}},
    ], "paging": {"cursors": {"after": "QVFI"}, "next": "https://graph.facebook.com/v21.0/..."}})
    _json(root / "media_page2.json", {"data": [
        {"id": "1790003", "caption": "", "like_count": 40, "comments_count": 1,
         "timestamp": "2024-05-05T09:00:00+0000",
         "media_type": "CAROUSEL_ALBUM"}]})
    _json(root / "insights" / "a.json", {"data": [
        {"name": "impressions", "period": "lifetime", "values": [{"value": 1500}],
         "id": "1790001/insights/impressions/lifetime"},
        {"name": "saved", "period": "lifetime", "values": [{"value": 31}],
         "id": "1790001/insights/saved/lifetime"},
        {"name": "total_interactions", "period": "lifetime", "values": [{"value": 170}],
         "id": "1790001/insights/total_interactions/lifetime"},
    ]})
    _json(root / "insights" / "1790003.json", {"data": [  # newer API answers carry total_value and no id
        {"name": "profile_visits", "period": "lifetime", "total_value": {"value": 6}},
        {"name": "follows", "period": "lifetime", "total_value": {"value": 2}}]})
    _json(root / "insights" / "1790999.json",
          {"data": [{"name": "reach", "period": "lifetime", "values": [{"value": 9}]}]})
    _json(root / "me.json", {"id": "178414", "username": "Anna.Bakes", "followers_count": 5400})
    _json(root / "failed.json", {"error": {"message": "Invalid OAuth access token", "code": 190}})
    return root


def test_graph_api_pages_insights_and_the_account_node_become_one_table(tmp_path: Path) -> None:
    posts = load_posts("insights", _graph_dump(tmp_path / "graph")).set_index("post_id")
    assert list(posts.index) == ["1790001", "1790002", "1790003"]
    assert list(posts["likes"]) == [120, 310, 40]
    assert (posts.loc["1790001", "impressions"], posts.loc["1790001", "saves"]) == (1500, 31)
    # views -> impressions
    assert (posts.loc["1790002", "impressions"], posts.loc["1790002", "reach"]) == (5400, 4100)
    assert (posts.loc["1790003", "profile_visits"], posts.loc["1790003", "follows"]) == (6, 2)
    assert posts.loc["1790003", "impressions"] is pd.NA
    assert set(posts["account"]) == {"anna.bakes"} and set(posts["followers"]) == {5400}
    assert [bool(v) for v in posts["is_video"]] == [False, True, False]
    report = posts.attrs["report"]
    assert report.skipped["insights of media not in any media page (1790999)"] == 1
    assert report.skipped["Graph API error responses (failed.json)"] == 1
    assert "insight metrics not used: total_interactions" in report.summary()
    assert "account 'anna.bakes' from the account node" in report.summary()


def test_a_media_page_without_like_counts_names_the_file_the_item_and_the_field(tmp_path: Path) -> None:
    _json(tmp_path / "page.json", {"data": [
        {"id": "1", "like_count": 3, "timestamp": "2024-05-01T18:30:00+0000"},
        {"id": "2", "timestamp": "2024-05-02T18:30:00+0000"}]})
    with pytest.raises(DataError, match=r"file .*page.json, row 2, field 'like_count': has no like_count"):
        load_posts("insights", tmp_path / "page.json", account="anna")


def test_a_bad_timestamp_in_a_media_page_names_the_api_field(tmp_path: Path) -> None:
    _json(tmp_path / "g" / "page.json", {"data": [{"id": "1", "like_count": 3, "timestamp": "yesterday"}]})
    with pytest.raises(DataError, match=r"page.json, row 1, field 'timestamp': 'yesterday' is not a date"):
        load_posts("insights", tmp_path / "g", account="anna")


def test_a_folder_of_insights_without_a_media_page_says_what_to_save(tmp_path: Path) -> None:
    _json(tmp_path / "g" / "1790001.json", {"data": [{"name": "reach", "values": [{"value": 9}]}]})
    with pytest.raises(DataError, match=r"holds no media list page"):
        load_posts("insights", tmp_path / "g")


def test_a_byte_order_mark_and_month_first_dates_are_read_as_meta_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffPost ID,Publish time,Likes\n1790,05/01/2024 18:30,3\n".encode())
    posts = load_posts("insights", path, account="anna")
    assert (posts["post_id"].iloc[0], posts["likes"].iloc[0]) == ("1790", 3)
    assert posts["posted_at"].iloc[0] == pd.Timestamp("2024-05-01 18:30", tz="UTC")


def test_slashed_dates_of_an_export_are_read_one_way_and_the_report_says_which(tmp_path: Path) -> None:
    # Meta's current export writes Publish time month first:
    # ambiguous dates follow it, and the report says so.
    meta = load_posts("insights", _write(tmp_path, "export.csv", NEW_HEADER, NEW_ROWS))
    assert "posted_at read as MM/DD/YYYY, month first (as Meta writes 'Publish time'" in meta.attrs[
        "report"].summary()
    # An older export's Date column has no known order:
    # decided from its values, or an error naming the option.
    rows = [OLD_ROWS[0].replace("2022-01-03", "03/04/2022"), OLD_ROWS[1].replace("2022-01-04", "20/04/2022")]
    posts = load_posts("insights", _write(tmp_path, "old.csv", OLD_HEADER, rows))
    assert list(posts["posted_at"]) == [pd.Timestamp("2022-04-03", tz="UTC"),
                                        pd.Timestamp("2022-04-20", tz="UTC")]
    rows[1] = rows[1].replace("20/04/2022", "05/04/2022")
    with pytest.raises(DataError, match=r"field 'Date': dates such as "
                       r"row 1 \(03/04/2022\), row 2 \(05/04/2022\).*data.date_format"):
        load_posts("insights", _write(tmp_path, "old.csv", OLD_HEADER, rows))
    settings = load_settings(None, ["data.source=insights", f"data.path={tmp_path / 'old.csv'}",
                                    "data.date_format=day-first"])
    assert load_training_posts(settings)["posted_at"].iloc[1] == pd.Timestamp("2022-04-05", tz="UTC")
