"""The draft studio in headless Chromium against a real server: upload, caption, score, compare.

Uses Debian's chromium (never `playwright install`, which downloads browsers) through Playwright's Python API.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from serving_helpers import ServeProcess, photo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # needs the session's trained smoke model
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
                       reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(trained[1], tmp_path_factory.mktemp("studio") / "serve.log") as server:
        yield server


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1400})
        finally:
            browser.close()


def _open_studio(page, served: ServeProcess) -> None:
    """The studio's page, once it has loaded the accounts the model knows (its first request)."""
    page.goto(f"{served.url}/")
    page.wait_for_selector("#account-list option", state="attached", timeout=30_000)


def test_studio_scores_an_uploaded_photo_and_compares_two_drafts(served: ServeProcess, page,
                                                                 tmp_path: Path) -> None:
    picture = tmp_path / "draft.jpg"
    picture.write_bytes(photo(320))
    _open_studio(page, served)
    assert page.input_value("#account")  # the first known account is preselected

    page.set_input_files("#photo-a", str(picture))
    page.fill("#caption-a", "Market morning, peaches are back " + " ".join(f"#tag{i}" for i in range(25)))
    assert page.inner_text("#count-a").startswith(str(len(page.input_value("#caption-a"))))
    page.click("#score-a")
    likes = page.wait_for_selector("#result-a .likes-expected", timeout=120_000)
    assert float(likes.inner_text().replace(",", "")) > 0
    assert "likely" in page.inner_text("#result-a .metric .range")
    assert page.locator("#result-a .tips li[data-code='too_many_hashtags']").count() == 1
    assert page.locator("#result-a .factors li").count() >= 1
    assert page.locator("#result-a .error").count() == 0
    # The account's usual and what this draft adds, and how far that can be trusted, in words.
    assert page.inner_text("#result-a .likes-usual").startswith("your usual now: ")
    assert "%" in page.inner_text("#result-a .likes-usual")
    assert "drafts apart" in page.inner_text("#result-a .skill") or "right" in page.inner_text(
        "#result-a .skill")

    # Every count the model predicts is shown with its range; the feed preview puts the draft top-left of a
    # 3x3 grid with the account's last eight photos, and the feed-consistency figure beside it.
    for name in ("likes", "comments", "impressions", "saves", "shares"):
        assert page.locator(f"#result-a .metric[data-target='{name}'] .range").count() == 1, name
    assert page.locator("#result-a .feed .grid .cell").count() == 9
    assert page.locator("#result-a .feed .cell.draft img").count() == 1
    assert page.locator("#result-a .feed .cell.photo img").count() == 8
    assert float(page.inner_text("#result-a .feed-consistency")) > -1

    page.set_input_files("#photo-b", str(picture))
    page.fill("#caption-b", "Market morning, peaches are back")
    page.click("#compare")
    verdict = page.wait_for_selector("#compare-result .verdict", timeout=120_000)
    assert "Draft B" in verdict.inner_text()  # the caption without hashtag stuffing is expected to do better
    assert "likes" in verdict.inner_text()
    assert page.locator("#compare-result .ranking tr").count() == 3  # header + two drafts
    assert page.locator("#result-b .likes-expected").count() == 1  # B's full score, side by side with A's

    # Choosing another goal ranks by it: the table and the verdict speak of saves, the saves card is marked.
    assert {"likes", "saves",
            "impressions"} <= set(page.eval_on_selector_all("#goal option", "os => os.map(o => o.value)"))
    page.select_option("#goal", "saves")
    page.check("#best-hour")
    page.click("#compare")
    page.wait_for_selector("#compare-result .best-hour", timeout=120_000)
    assert "saves" in page.inner_text("#compare-result .verdict")
    assert page.inner_text("#compare-result .ranking th:nth-child(3)") == "Expected saves"
    assert "for saves" in page.inner_text("#compare-result .best-hour")
    assert page.locator("#result-a .metric.goal[data-target='saves']").count() == 1

    shot = Path(os.environ.get("ENGAGE_SCREENSHOT_DIR", tmp_path)) / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_studio_shows_the_fields_error_for_a_file_that_is_not_a_photo(served: ServeProcess, page,
                                                                      tmp_path: Path) -> None:
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_bytes(b"these are my notes, not a photo")
    _open_studio(page, served)
    page.set_input_files("#photo-a", str(not_a_photo))
    page.fill("#caption-a", "Oops")
    page.click("#score-a")
    error = page.wait_for_selector("#result-a .error", timeout=60_000)
    assert error.inner_text().startswith("image: not a readable image")


def _no_clipped_number(page) -> None:
    clipped = page.eval_on_selector_all(
        ".metric .big, .metric .range, .factors .sign",
        "nodes => nodes.filter(n => n.scrollWidth > n.clientWidth + 1 || n.getBoundingClientRect().right > "
        "n.closest('.metric, li').getBoundingClientRect().right + 1).map(n => n.textContent)")
    assert clipped == []


def test_studio_numbers_are_compact_with_the_full_figure_on_hover_and_counted_as_the_server_counts(
        served: ServeProcess, page) -> None:
    _open_studio(page, served)
    assert page.evaluate("fmt(8104960)") == "8.1M" and page.evaluate("full(8104960)") == "8,104,960"
    assert page.evaluate("fmt(134399)") == "134.4K" and page.evaluate("full(134399)") == "134,399"
    assert page.evaluate("fmt(4321)") == "4,321" and page.evaluate("fmt(12.34)") == "12.3"
    page.fill("#caption-a", "Sunny 😀 day")  # the emoji is one character, as the server counts it
    assert page.inner_text("#count-a") == "11 / 2,200"
    page.click("#score-a")
    page.wait_for_selector("#result-a .likes-expected", timeout=120_000)
    big = page.locator("#result-a .likes-expected")
    assert big.get_attribute("title").replace(",", "").replace(".", "").isdigit()
    _no_clipped_number(page)
    # Bars to one scale: a full bar is a 50% change in likes (or the largest), never the largest by default.
    widths = page.eval_on_selector_all("#result-a .factors .bar",
                                       "bars => bars.map(b => parseFloat(b.style.width))")
    effects = page.eval_on_selector_all("#result-a .factors .sign",
        "s => s.map(n => parseFloat(n.textContent.replace('−', '-').replace('+', '')))")
    scale = max([50.0] + [abs(e) for e in effects])
    for width, effect in zip(widths, effects, strict=True):
        assert abs(width - max(0.5, abs(effect) / scale * 100)) < 1.5, (width, effect)


def test_a_new_account_gives_its_recent_posts_as_history_in_the_studio(
    served: ServeProcess, page, tmp_path: Path) -> None:
    picture = tmp_path / "old.jpg"
    picture.write_bytes(photo(320, colour=(40, 120, 200)))
    _open_studio(page, served)
    page.fill("#account", "brand_new_studio_account")
    page.fill("#caption-a", "First post here #hello")
    page.click("#score-a")
    tip = page.wait_for_selector("#result-a .tips li[data-code='unknown_account']", timeout=120_000)
    page.click("#result-a .tips li[data-code='unknown_account'] .add-history")  # the tip leads to the panel
    assert page.locator("#history-box[open]").count() == 1 and page.locator(".history-post").count() == 1
    assert tip is not None
    for i, (day, likes) in enumerate([("2024-05-01T10:00", "120"), ("2024-05-03T18:30", "95"),
                                      ("2024-05-06T09:15", "140")]):
        row = page.locator(".history-post").nth(i)
        row.locator(".h-photo").set_input_files(str(picture))
        row.locator(".h-caption").fill(f"Earlier post {i} #coffee")
        row.locator(".h-when").fill(day)
        row.locator(".h-likes").fill(likes)
        if i < 2:
            page.click("#history-add")
    assert page.inner_text("#history-count") == "3 posts, sent with every score"
    page.fill("#when-a", "2024-05-08T10:00")
    page.click("#score-a")
    page.wait_for_function("!document.querySelector(\"#result-a .tips li[data-code='unknown_account']\") && "
                           "document.querySelector('#result-a .likes-expected')", timeout=120_000)
    assert "the history you sent" in page.inner_text("#result-a .feed")
    assert page.locator("#result-a .feed .cell.photo img").count() == 3
    likes = float(page.get_attribute("#result-a .likes-expected", "title").replace(",", ""))
    assert 95 <= likes <= 140  # inside what its own posts support
    page.locator(".history-post").nth(1).locator(".h-likes").fill("")
    page.click("#score-a")
    error = page.wait_for_selector("#result-a .error", timeout=30_000)
    assert error.inner_text() == "recent post 2: give its like count"


def test_the_best_hour_has_its_date_and_time_zone(served: ServeProcess, page) -> None:
    _open_studio(page, served)
    page.fill("#caption-a", "Harbour at dawn")
    page.fill("#caption-b", "Harbour at dawn #sea")
    page.check("#best-hour")
    page.click("#compare")
    line = page.wait_for_selector("#compare-result .best-hour", timeout=120_000).inner_text()
    import re

    assert re.search(
        r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{1,2} [A-Z][a-z]+ 20\d\d"
                     r"(,| at) \d\d:00 (UTC|GMT)", line), line
    assert page.evaluate(
        "bestHourText({posted_at: '2026-12-08T09:00:00Z', time_zone: 'Europe/Paris'})").startswith(
        "Tuesday, 8 December 2026")
    assert "10:00 CET" in page.evaluate(
        "bestHourText({posted_at: '2026-12-08T09:00:00Z', time_zone: 'Europe/Paris'})")


def _as_the_studio_shows(x: float) -> str:
    """The full figure the studio puts in a number's tooltip (studio.js `full`)."""
    return f"{round(x):,}" if x >= 100 else f"{x:.1f}"


def test_a_published_drafts_outcome_recorded_in_the_studio_shows_in_its_accuracy_panel(
        served: ServeProcess, page, tmp_path: Path) -> None:
    picture = tmp_path / "published.jpg"
    picture.write_bytes(photo(320, colour=(60, 160, 90)))
    _open_studio(page, served)
    account = page.input_value("#account")
    page.set_input_files("#photo-a", str(picture))
    page.fill("#caption-a", "Greenhouse tomatoes at last #garden")
    page.click("#score-a")
    page.wait_for_selector("#result-a .likes-expected", timeout=120_000)
    expected = float(page.get_attribute("#result-a .likes-expected", "title").replace(",", ""))
    score_id = page.input_value("#outcome-score")  # the score fills the form's score id, and names it
    assert score_id and f"score id {score_id}" in page.inner_text("#result-a")

    page.click("#outcome-box summary")
    page.fill("#outcome-post", "https://www.instagram.com/p/StudioTest24h/")
    page.fill("#outcome-when", "2024-06-01T09:00")
    page.fill("#outcome-age", "24")
    actual = round(expected * 1.5) + 7  # off by a known amount, so the panel's error is not zero
    page.fill("#outcome-likes", str(actual))
    page.fill("#outcome-comments", "4")
    page.click("#outcome-send")
    done = page.wait_for_selector("#outcome-result p", timeout=30_000).inner_text()
    assert done == "Recorded post StudioTest24h at 24 h."  # the permalink stands for the post id

    page.click("#accuracy-show")
    page.wait_for_selector("#accuracy-result img.accuracy-plot", timeout=60_000)
    page.wait_for_function("document.querySelector('#accuracy-result img.accuracy-plot').complete",
                           timeout=30_000)
    answer = httpx.get(f"{served.url}/v1/accuracy", params={"account": account}, timeout=30).json()
    mine = [p for p in answer["points"] if p["score_id"] == score_id and p["target"] == "likes"]
    assert len(mine) == 1 and mine[0]["actual"] == actual and mine[0]["post_id"] == "StudioTest24h"
    assert abs(mine[0]["expected"] - expected) <= (0.5 if expected >= 100 else 0.05)  # what the studio showed

    # The draft is listed with what engage predicted and what it did; the table's MAE is the API's.
    row = page.locator(
        f"#accuracy-result .accuracy-points tr[data-score-id='{score_id}'][data-target='likes']")
    assert row.count() == 1
    assert row.locator(".post").inner_text() == "StudioTest24h (24 h)"
    assert row.locator(".predicted").get_attribute("title") == _as_the_studio_shows(mine[0]["expected"])
    assert row.locator(".actual").inner_text() == f"{actual:,}"
    likes = next(t for t in answer["targets"] if t["target"] == "likes")
    assert likes["posts"] >= 1 and likes["mae"] > 0
    mae = page.locator("#accuracy-result .accuracy-table tr[data-target='likes'] .mae")
    assert mae.get_attribute("title") == _as_the_studio_shows(likes["mae"])
    summary = page.inner_text("#accuracy-result > p")
    assert summary.startswith(f"{answer['published']} of {answer['scored']} scored drafts of {account}")
    assert page.locator("#accuracy-result .accuracy-table tr[data-target='comments']").count() == 1

    width = page.eval_on_selector("#accuracy-result img.accuracy-plot", "img => img.naturalWidth")
    assert width > 0
    plot = httpx.get(f"{served.url}/v1/accuracy/plot", params={"account": account}, timeout=30)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"

    shot = Path(os.environ.get("ENGAGE_SCREENSHOT_DIR", tmp_path)) / "accuracy-panel.png"
    page.locator("section.accuracy").screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000
