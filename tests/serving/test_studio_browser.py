"""The draft studio in headless Chromium against a real server: upload, caption, score, compare.

Uses Debian's chromium (never `playwright install`, which downloads browsers) through Playwright's Python API.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def test_studio_scores_an_uploaded_photo_and_compares_two_drafts(served: ServeProcess, page, tmp_path: Path) -> None:
    picture = tmp_path / "draft.jpg"
    picture.write_bytes(photo(320))
    page.goto(f"{served.url}/")
    page.wait_for_selector("#account-list option", state="attached", timeout=30_000)
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
    assert "drafts apart" in page.inner_text("#result-a .skill") or "right" in page.inner_text("#result-a .skill")

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
    assert {"likes", "saves", "impressions"} <= set(page.eval_on_selector_all("#goal option", "os => os.map(o => o.value)"))
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


def test_studio_shows_the_fields_error_for_a_file_that_is_not_a_photo(served: ServeProcess, page, tmp_path: Path) -> None:
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_bytes(b"these are my notes, not a photo")
    page.goto(f"{served.url}/")
    page.wait_for_selector("#account-list option", state="attached", timeout=30_000)
    page.set_input_files("#photo-a", str(not_a_photo))
    page.fill("#caption-a", "Oops")
    page.click("#score-a")
    error = page.wait_for_selector("#result-a .error", timeout=60_000)
    assert error.inner_text().startswith("image: not a readable image")
