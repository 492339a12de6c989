"""A real browser (Debian's Chromium, driven by Playwright): open the UI, visit every tab, generate text, an
image and a clip, run a comparison and replay its timeline. Screenshots go to tests/artifacts/: look at them."""

import os
import re

import pytest
from conftest import ARTIFACTS, CHROMIUM

pytestmark = [pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="no Chromium here (make test installs Debian's chromium with apt-get, which needs "
                                       "root): the browser tests need it"), pytest.mark.browser, pytest.mark.slow]
TABS = ["Image", "Audio", "Video", "Text", "Text diffusion", "Understand", "Translate", "Key differences"]


@pytest.fixture(scope="module")
def page(bundled, chromium):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(bundled[0].local_url)
    page.get_by_role("tab", name="Image").wait_for(timeout=30_000)
    yield page
    page.close()


@pytest.fixture
def image_model(bundled):
    if bundled[1]["image"].missing:
        pytest.skip("the bundled image model is not trained in this checkout")


def run_in_tab(page, tab: str, prefix: str, prompt: str) -> None:
    """Open `tab`, type `prompt` into #<prefix>-prompt and press #<prefix>-run."""
    page.get_by_role("tab", name=tab, exact=True).click()
    page.locator(f"#{prefix}-prompt textarea").fill(prompt)
    page.locator(f"#{prefix}-run").click()


def test_every_tab_opens(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in TABS:
        page.get_by_role("tab", name=name, exact=True).click()
        page.wait_for_timeout(300)
        assert page.get_by_role("tab", name=name, exact=True).get_attribute("aria-selected") == "true"
    page.screenshot(path=str(ARTIFACTS / "ui-differences.png"), full_page=True)
    assert page.get_by_text("Underlying principle").first.is_visible()


def test_chat_in_the_browser(page):
    run_in_tab(page, "Text", "text", "The secret word is banana.")
    page.wait_for_selector("#text-progress .step-progress:has-text('done')", timeout=300_000)
    assert page.locator("#text-prompt textarea").input_value() == ""  # the message moved into the chat
    assert "%" in page.locator("#text-candidates").inner_text()  # gr.Label: the top-5 candidates
    assert page.locator("#text-inspect").is_visible()  # any token of the reply can be inspected
    page.locator("#text-prompt textarea").fill("What is the secret word?")
    page.locator("#text-prompt textarea").press("Enter")  # Enter sends, as the Send button does
    page.wait_for_function("document.querySelectorAll('#text-chat [data-testid=\"bot\"]').length === 2", timeout=300_000)
    page.wait_for_selector("#text-progress .step-progress:has-text('done')", timeout=300_000)
    bubbles = page.locator("#text-chat [data-testid='user']")
    assert bubbles.count() == 2 and "banana" in bubbles.first.inner_text()  # the first turn is still there
    page.screenshot(path=str(ARTIFACTS / "ui-text.png"), full_page=True)
    assert page.locator("#text-chat [data-testid='bot']").last.inner_text().strip()


def test_generate_image_in_the_browser(page, image_model):
    run_in_tab(page, "Image", "image", "a large red circle in the center on a blue background")
    page.wait_for_selector("#image-progress .step-progress:has-text('done')", timeout=300_000)
    page.wait_for_selector("#image-output img", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "ui-image.png"), full_page=True)


def test_generate_video_in_the_browser(page, bundled):
    if bundled[1]["video"].missing:
        pytest.skip("the bundled video model is not in this checkout")
    run_in_tab(page, "Video", "video", "a large white square moving right on a black background")
    page.wait_for_selector("#video-progress .step-progress:has-text('done')", timeout=300_000)
    page.wait_for_selector("#video-output video", timeout=30_000)
    assert page.locator("#video-output video").get_attribute("src").endswith(".mp4")
    page.wait_for_timeout(500)  # let the clip start playing before the screenshot
    page.screenshot(path=str(ARTIFACTS / "ui-video.png"), full_page=True)


def test_compare_runs_both_models_and_the_timeline_replays_a_step(page, image_model):
    run_in_tab(page, "Key differences", "compare", "a small yellow triangle at the top on a black background")
    caption = page.locator("#compare-caption")
    page.wait_for_selector("#compare-caption :text('Step')", timeout=300_000)  # written when both models finish
    assert "forward passes" in page.locator("#compare-diffusion-counter").inner_text()
    assert "%" in page.locator("#compare-candidates").inner_text()  # gr.Label: the top-5 candidates
    page.screenshot(path=str(ARTIFACTS / "ui-compare-done.png"), full_page=True)
    box = page.locator("#compare-timeline input[type=number]")
    box.fill("3")
    box.press("Enter")
    page.wait_for_selector("#compare-caption :text('Step 3')", timeout=30_000)
    assert "diffusion step 3" in caption.inner_text() and "LLM step 3" in caption.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-compare-step3.png"), full_page=True)
    # Branch the LLM at step 3 (candidate 2 by default), then switch the image prompt from step 2.
    box = page.locator("#branch-step input[type=number]")
    box.fill("3")
    box.press("Enter")
    page.locator("#branch-run").click()
    page.wait_for_function("document.querySelector('#branch-output textarea').value.length > 0", timeout=120_000)
    page.locator("#switch-run").click()
    page.wait_for_selector("#switch-output img", timeout=120_000)
    page.locator("#branch-output").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "ui-compare-experiments.png"), full_page=True)


def test_text_diffusion_fills_the_canvas_and_replays_a_half_filled_step(page, bundled):
    if bundled[1]["text_diffusion"].missing:
        pytest.skip("the bundled text-diffusion model is not in this checkout")
    run_in_tab(page, "Text diffusion", "textdiff", "a small red circle on the left on a blue background")
    page.wait_for_selector("#textdiff-progress .step-progress:has-text('done')", timeout=300_000)
    assert "circle" in page.locator("#textdiff-output textarea").input_value()
    box = page.locator("#textdiff-replay input[type=number]")
    box.fill("8")
    box.press("Enter")
    page.wait_for_selector("#textdiff-progress :text('step 8 / 16')", timeout=30_000)
    canvas = page.locator("#textdiff-canvas").inner_text()
    assert "\u2592" in canvas and re.search("[a-z]{3,}", canvas), canvas  # half filled: masks and words
    page.screenshot(path=str(ARTIFACTS / "ui-text-diffusion-step8.png"), full_page=True)
