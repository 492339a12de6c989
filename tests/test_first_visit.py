"""A first visit, in a real browser (Debian's Chromium through Playwright): every tab's main button works on the first
click without typing anything, the guided path's six steps each show their result, and every tab is looked at at
1400 px and at phone width (390 px), before and after a run. Screenshots go to tests/artifacts/: look at them."""

import os
import time

import pytest
from conftest import ARTIFACTS, CHROMIUM

pytestmark = [pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium here (make test installs Debian's "
                                 "chromium with apt-get, which needs root)"), pytest.mark.browser, pytest.mark.slow]
# tab -> (its main button, what shows the run is done)
MAIN = {"Image": ("#image-run", "#image-progress"), "Audio": ("#audio-run", "#audio-progress"),
        "Video": ("#video-run", "#video-progress"), "Text": ("#text-run", "#text-progress"),
        "Text diffusion": ("#textdiff-run", "#textdiff-progress"), "Understand": ("#understand-run", "#understand-progress"),
        "Translate": ("#translate-run", "#translate-progress"),
        "Key differences": ("#compare-run", "#compare-llm-counter")}


@pytest.fixture(scope="module")
def browser(bundled, chromium):
    return chromium


def open_app(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url)
    page.get_by_role("tab", name="Image").wait_for(timeout=30_000)
    return page


def open_tab(page, name: str) -> None:
    """Click a tab; at phone width the last ones sit behind the tab bar's "More tabs" menu."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if not tab.count():
        page.get_by_label("More tabs").click()
        page.locator(".overflow-dropdown").get_by_role("button", name=name, exact=True).click()
        page.wait_for_timeout(200)
        return
    tab.click()


def errors(page) -> list[str]:
    """The error toasts on the page (Gradio shows a gr.Error as a toast titled "Error")."""
    return [t.inner_text() for t in page.locator(".toast-body").all() if "error" in t.inner_text().lower()]


@pytest.mark.parametrize("width", [1400, 390])
def test_every_main_button_works_on_the_first_click(browser, bundled, width):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = open_app(browser, bundled[0].local_url, width)
    for tab, (button, done) in MAIN.items():
        open_tab(page, tab)
        page.wait_for_timeout(300)
        slug = tab.lower().replace(" ", "-")
        page.screenshot(path=str(ARTIFACTS / f"first-{slug}-{width}-before.png"), full_page=True)
        page.locator(button).click()
        page.wait_for_selector(f"{done} .step-progress:has-text('done')", timeout=300_000)
        assert not errors(page), (tab, errors(page))
        page.screenshot(path=str(ARTIFACTS / f"first-{slug}-{width}-after.png"), full_page=True)
        if width < 500:  # nothing wider than the phone's screen
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 2, (tab, overflow)
    page.close()


def test_the_guided_path_shows_each_step(browser, bundled):
    page = open_app(browser, bundled[0].local_url, 1400)
    open_tab(page, "Key differences")
    for number in range(1, 7):
        page.locator(f"#guided-{number}-run").click()
        result = page.locator(f"#guided-{number}-result")
        if number == 1:
            page.wait_for_selector("#guided-1-result img", timeout=300_000)
            assert result.locator("img").count() == 6
        elif number == 5:  # a textbox: its text is the textarea's value
            page.wait_for_function("document.querySelector('#guided-5-result textarea')?.value.length > 20",
                                   timeout=300_000)
        else:
            page.wait_for_function(f"document.querySelector('#guided-{number}-result')?.innerText.trim().length > 20",
                                   timeout=300_000)
        assert not errors(page), (number, errors(page))
        result.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "guided-path.png"), full_page=True)
    page.close()


def test_an_example_shows_its_result_at_once(browser, bundled):
    """Clicking an example fills the inputs and shows that example's result without a run: Gradio's example cache,
    made ahead by app.prefill_examples as the app does once idle after it starts."""
    from app import prefill_examples

    demo = bundled[0]
    (image_examples,) = [e for e in demo.example_sets if e.inputs[0].elem_id == "image-prompt"]
    prefill_examples([image_examples], quiet_s=0.1)
    page = open_app(browser, demo.local_url, 1400)
    open_tab(page, "Image")
    prompt = "a small yellow triangle at the top on a black background"
    started = time.monotonic()
    page.locator(".gallery-item, button").filter(has_text=prompt).first.click()
    page.wait_for_selector("#image-progress .step-progress:has-text('done')", timeout=10_000)
    page.wait_for_function("document.querySelector('#image-output img')?.naturalWidth > 0", timeout=10_000)
    seconds = time.monotonic() - started
    assert page.locator("#image-prompt textarea").input_value() == prompt
    assert not errors(page), errors(page)
    assert seconds < 3.0, f"the cached example took {seconds:.1f} s to show"  # a run is 25 steps: about 1-3 s more
    page.screenshot(path=str(ARTIFACTS / "example-cached-image-1400.png"), full_page=True)
    page.close()
