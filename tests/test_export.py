"""Take a run home: an exported run is one self-contained HTML file (no network, images inline, the records inside) whose
step slider replays every lane. Unit tests on hand-made records, then the endpoints and a real browser offline."""

import base64
import html
import io
import json
import os
import re
import time

import pytest
from conftest import ARTIFACTS, CHROMIUM

from demo import export
from demo.export import ExportError, check_compare, check_text_diffusion, compare_html, text_diffusion_html

HOSTILE = "<script>alert(1)</script>"
MB = 1024 * 1024


def png(size: int = 64, seed: int = 0) -> str:
    """A noisy RGB picture as a PNG data URI (noise compresses worst: an upper bound on a real preview's size)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def td_steps(words: list[str], per_step: int = 2, length: int | None = None, revise: bool = False) -> list[dict]:
    """A text-diffusion run over a canvas of `length` positions: `per_step` words committed a step, from the right."""
    length = length or len(words)
    order = list(range(len(words)))[::-1]
    steps, left = [], length
    for i in range(0, len(order), per_step):
        chunk = order[i:i + per_step]
        left -= len(chunk)
        steps.append({"step": len(steps) + 1, "committed": [{"position": p, "token": words[p], "probability": 0.9}
                                                           for p in chunk],
                      "revised": [], "masks_left": left, "seconds": 0.01, "block": [0, length],
                      "confidence": [0.5] * length})
    if revise:  # one more pass takes back position 0
        steps.append({"step": len(steps) + 1, "committed": [], "masks_left": 0, "seconds": 0.01, "block": [0, length],
                      "revised": [{"position": 0, "token": "Another", "previous": words[0], "probability": 0.8}],
                      "confidence": [0.9] * length})
    return steps


def compare_records(n_diffusion: int = 25, n_llm: int = 24, hostile: bool = False) -> dict:
    """Records in /compare's shape, as big as the default run (25 denoising steps, 24 tokens, a 32-position canvas)."""
    tokens = (["A", " large", " red", " circle", hostile and " " + HOSTILE or " on", " a", " blue", " background", "."]
              * 3)[:n_llm - 1] + ["<|im_end|>"]
    llm = [{"step": i + 1, "token": t, "probability": 0.5, "seconds": 0.1, "elapsed": 0.1 * (i + 1), "forward_passes": 1,
            "candidates": [{"token": t, "token_id": 1, "probability": 0.5}, {"token": "\n", "token_id": 2, "probability": 0.2},
                           *({"token": f" w{j}", "token_id": 3 + j, "probability": 0.05} for j in range(3))]}
           for i, t in enumerate(tokens)]
    words = "A large red circle sits in the center of a blue background .".split()
    canvas = words + ["[EOS]"] * (32 - len(words))
    return {"diffusion": [{"step": i + 1, "timestep": 999.0 - 40 * i, "seconds": 0.05, "elapsed": 0.05 * (i + 1),
                           "forward_passes": 2, "preview": png(seed=i)} for i in range(n_diffusion)],
            "text_diffusion": td_steps(canvas),
            "llm": llm}


def td_records(**kwargs) -> dict:
    words = "A small red circle on the left on a blue background .".split()
    steps = td_steps(words + ["[EOS]"] * 4, **kwargs)
    return {"steps": steps, "run": {"gen_length": 16, "block_length": 16, "threshold": 0.0, "editing_threshold": 0.0,
                                    "temperature": 0.0, "steps": len(steps), "tokens_per_pass": 2.0,
                                    "revisions": sum(len(s["revised"]) for s in steps)}}


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    assert not re.search(r"https?://", page), re.search(r".{40}https?://.{40}", page)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I) and not re.search(r"<link\b", page, re.I)
    for url in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", page):
        assert url.startswith(("data:", "#")), url[:60]
    assert re.search(r"<input[^>]*type=\"range\"", page)
    assert len(page.encode()) <= 5 * MB


def embedded(page: str, name: str = "records") -> dict:
    return json.loads(re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', page, re.S).group(1))


def test_a_compare_export_is_one_self_contained_file_with_every_step():
    records = compare_records()
    page = compare_html(records, "a large red circle in the center on a blue background")
    assert_self_contained(page)
    assert 'max="25"' in page and embedded(page) == records  # the slider spans the longest lane; the records inside
    assert embedded(page, "view")["td_length"] == 32
    for r in records["diffusion"]:
        assert r["preview"] in page
    for r in records["llm"]:
        assert html.escape(export.readable(r["token"])) in page  # the transcript: the token chosen at each step
    for s in records["text_diffusion"]:
        for c in s["committed"]:
            assert f"{c['token']} ({c['position'] + 1})" in page
    link = re.search(r'<a download="compare-records.json" href="data:application/json;base64,([^"]+)"', page)
    assert json.loads(base64.b64decode(link.group(1))) == records  # the JSON, as a download
    assert len(page.encode()) < 1.5 * MB  # the default run, noise for pictures: well under the 5 MB limit


def test_a_text_diffusion_export_has_every_step_and_marks_revisions():
    records = td_records(revise=True)
    page = text_diffusion_html(records, "a small red circle", "Another small red circle on the left on a blue background.")
    assert_self_contained(page)
    assert f'max="{len(records["steps"])}"' in page and embedded(page) == records
    for s in records["steps"]:
        for c in s["committed"]:
            assert f"{c['token']} ({c['position'] + 1})" in page
    assert "A → Another (1)" in page and "revised (the old token struck out)" in page
    assert "Another small red circle" in page


def test_tokens_and_prompts_are_text_never_markup():
    page = compare_html(compare_records(hostile=True), f"a {HOSTILE} prompt")
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("</script>") == page.count("<script")  # no token closed a script block early
    assert HOSTILE in json.dumps(embedded(page)["llm"])  # ... and the records still hold the token as it was
    records = td_records()
    records["steps"][0]["committed"][0]["token"] = HOSTILE
    page = text_diffusion_html(records, HOSTILE, HOSTILE)
    assert HOSTILE not in page and page.count("</script>") == page.count("<script")


def test_an_infilling_run_shows_the_template_words_before_its_first_step():
    steps = [{"step": 1, "committed": [{"position": 5, "token": "red", "probability": 1.0}], "revised": [],
              "masks_left": 1, "block": [0, 16], "confidence": [0.9] * 16},
             {"step": 2, "committed": [{"position": 9, "token": "left", "probability": 1.0}], "revised": [],
              "masks_left": 0, "block": [0, 16], "confidence": [0.9] * 16}]
    records = {"steps": steps, "run": {"gen_length": 16, "gaps": [5, 9]}}
    page = text_diffusion_html(records, "a small red circle", "The picture shows a small red circle on the left.")
    initial = embedded(page, "view")["initial"]
    assert initial[:6] == ["The", "picture", "shows", "a", "small", "▒"] and initial[9] == "▒"
    assert initial[10] == "." and initial[11:] == ["[EOS]"] * 5
    # words that do not line up one per position (a sub-word tokenizer): the given words are not guessed
    page = text_diffusion_html(records, "a small red circle", "The picture shows a small reddish circle.")
    assert set(embedded(page, "view")["initial"]) == {"…", "▒"}


@pytest.mark.parametrize("change, field, where", [
    (lambda r: r.update(llm="nope"), "records", "records.llm"),
    (lambda r: r["llm"][2].update(token=7), "records", "records.llm[2].token"),
    (lambda r: r["diffusion"][1].update(preview="https://example.com/x.png"), "records", "records.diffusion[1].preview"),
    (lambda r: r["diffusion"][1].update(preview='data:image/png;base64,AA" onerror="x'), "records",
     "records.diffusion[1].preview"),
    (lambda r: r["text_diffusion"][0]["committed"][0].update(position=99), "records",
     "records.text_diffusion[0].committed[0].position"),
    (lambda r: r["llm"][0]["candidates"].append({"token": None}), "records", "records.llm[0].candidates[5]"),
])
def test_records_of_the_wrong_shape_are_refused_naming_the_place(change, field, where):
    records = compare_records(n_diffusion=3, n_llm=4)
    change(records)
    with pytest.raises(ExportError, match=re.escape(f"`{where}`")) as caught:
        check_compare(records, "a prompt")
    assert caught.value.field == field


def test_no_run_and_bad_text_are_refused_by_field():
    with pytest.raises(ExportError, match="Run the comparison first") as caught:
        check_compare(None, "a prompt")
    assert caught.value.field == "records"
    with pytest.raises(ExportError) as caught:
        check_compare(compare_records(3, 4), 12)
    assert caught.value.field == "prompt"
    with pytest.raises(ExportError, match="Generate first"):
        check_text_diffusion(None, "a prompt", "")
    with pytest.raises(ExportError, match=r"`records.steps`") as caught:
        check_text_diffusion({"steps": [], "run": {}}, "a prompt", "")
    with pytest.raises(ExportError) as caught:
        check_text_diffusion(td_records(), "a prompt", None)
    assert caught.value.field == "text"
    with pytest.raises(ExportError, match=r"`records.steps\[0\].block`"):
        bad = td_records()
        bad["steps"][0]["block"] = [0]
        check_text_diffusion(bad, "a prompt", "")


def test_the_diffusion_records_carry_a_small_png_preview():
    from PIL import Image

    from pipelines.base import Step
    from pipelines.compare import diffusion_record

    small = diffusion_record(Step(1, 2, 0.1, Image.new("RGB", (64, 64), "red"), {"timestep": 999}), 3.0)
    big = diffusion_record(Step(2, 2, 0.2, Image.new("RGB", (512, 512), "blue"), {}), 3.0)
    none = diffusion_record(Step(2, 2, 0.2, None, {}), 3.0)
    assert "preview" not in none and small["forward_passes"] == 2
    for record, side in ((small, 64), (big, 128)):
        head, data = record["preview"].split(",", 1)
        assert head == "data:image/png;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (side, side)  # 64x64 kept; large ones shrunk


def test_write_export_makes_a_fresh_file_and_clears_old_ones():
    old = export.write_export("compare", "<!DOCTYPE html>old")
    os.utime(old, (time.time() - export.EXPORT_TTL_S - 60,) * 2)
    new = export.write_export("compare", "<!DOCTYPE html>new")
    assert os.path.dirname(new) == export.EXPORT_DIR and new.endswith(".html") and not os.path.exists(old)
    with open(new, encoding="utf-8") as f:
        assert f.read() == "<!DOCTYPE html>new"
    os.remove(new)


# -- in a real browser, with the network off --------------------------------------------------------------------
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium here (make test installs "
                                    "Debian's chromium with apt-get, which needs root): the browser tests need it")


@pytest.fixture
def offline_page(chromium):
    """A page with the network off: anything but a file:// or data: URL is aborted and recorded."""
    context = chromium.new_context(offline=True, viewport={"width": 1300, "height": 900})
    blocked, errors = [], []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                  else (blocked.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.blocked, page.errors = blocked, errors
    yield page
    context.close()


def replays(page, path, shot: str) -> None:
    """Open an exported file from disk, move the slider back and forth, and check every lane changes with it."""
    page.goto("file://" + os.path.abspath(path))
    page.wait_for_selector("#caption:has-text('Step')")
    lanes = [s for s in ("#image", "#canvas", "#llm-text", "#cands") if page.locator(s).count()]
    seen = lambda: [page.locator(s).get_attribute("src") if s == "#image" else page.locator(s).inner_text()  # noqa: E731
                    for s in lanes]
    last, caption = seen(), page.locator("#caption").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"export-{shot}-last.png"), full_page=True)
    page.locator("#step").fill("2")
    page.wait_for_selector("#stepnum:has-text('Step 2 /')")
    second = seen()
    assert page.locator("#caption").inner_text() != caption
    assert all(a != b for a, b in zip(last, second)), (lanes, last, second)  # every lane went back
    page.screenshot(path=str(ARTIFACTS / f"export-{shot}-step2.png"), full_page=True)
    page.locator("#step").press("End")  # the keyboard moves it too
    page.wait_for_function("document.querySelector('#caption').textContent.startsWith('Step ' + "
                           "document.querySelector('#step').max + ' ')")
    assert seen() == last
    assert page.blocked == [] and page.errors == [], (page.blocked, page.errors)


@needs_chromium
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["compare", "text_diffusion"])
def test_an_exported_file_replays_offline_in_a_browser(offline_page, tmp_path, kind):
    if kind == "compare":
        page = compare_html(compare_records(n_diffusion=6, n_llm=5), "a large red circle")
    else:
        page = text_diffusion_html(td_records(revise=True), "a small red circle", "Another small red circle.")
    path = tmp_path / f"{kind}.html"
    path.write_text(page, encoding="utf-8")
    replays(offline_page, path, kind)


# -- the endpoints, on the bundled app -----------------------------------------------------------------------------
PROMPT = "a large red circle in the center on a blue background"


@pytest.mark.slow
def test_the_endpoints_export_a_default_run_and_refuse_bad_records(client, bundled):
    from gradio_client.exceptions import ValidationError

    with pytest.raises(ValidationError, match=r"records: `records.llm`"):
        client.predict(records={"diffusion": [], "llm": 3}, prompt=PROMPT, api_name="/export_compare")
    with pytest.raises(ValidationError, match="records: Generate first"):
        client.predict(records=None, prompt=PROMPT, text="", api_name="/export_text_diffusion")
    if bundled[1]["text_diffusion"].missing:
        pytest.skip("the bundled text-diffusion model is not in this checkout")
    text, records = (lambda out: (out[0], out[4]))(client.predict(prompt=PROMPT, gen_length=32, num_inference_steps=16,
                                                                  seed=0, api_name="/text_diffusion"))
    path = client.predict(records=records, prompt=PROMPT, text=text, api_name="/export_text_diffusion")
    page = open(path, encoding="utf-8").read()
    assert_self_contained(page)
    assert embedded(page) == records
    sizes = {"text diffusion": os.path.getsize(path)}
    if bundled[1]["image"].missing:
        pytest.skip("the bundled image model is not in this checkout")
    records = client.predict(prompt=PROMPT, num_inference_steps=25, max_new_tokens=24, seed=0, api_name="/compare")[2]
    assert all(r["preview"].startswith("data:image/png;base64,") for r in records["diffusion"])
    path = client.predict(records=records, prompt=PROMPT, api_name="/export_compare")
    page = open(path, encoding="utf-8").read()
    assert_self_contained(page)
    assert embedded(page) == records
    sizes["compare"] = os.path.getsize(path)
    print("default runs exported:", ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()))


@needs_chromium
@pytest.mark.browser
@pytest.mark.slow
def test_both_tabs_download_a_run_that_replays_offline(bundled, chromium, offline_page, tmp_path):
    """In the app: run each tab with what it opens with, press "Download this run (HTML)", save the file, open it
    from disk with the network off and move its slider."""
    if bundled[1]["image"].missing or bundled[1]["text_diffusion"].missing:
        pytest.skip("the bundled image and text-diffusion models are not both in this checkout")
    saved = {}
    page = chromium.new_page(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    page.goto(bundled[0].local_url)
    for tab, prefix, done in (("Text diffusion", "textdiff", "#textdiff-progress .step-progress:has-text('done')"),
                              ("Key differences", "compare", "#compare-caption :text('Step')")):
        page.get_by_role("tab", name=tab, exact=True).click()
        page.locator(f"#{prefix}-run").click()
        page.wait_for_selector(done, timeout=300_000)
        page.locator(f"#{prefix}-export").click()
        link = page.locator(f"#{prefix}-export-file a[download]").first
        link.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"export-app-{prefix}-button.png"), full_page=True)
        with page.expect_download() as download:
            link.click()
        saved[prefix] = tmp_path / f"{prefix}.html"
        download.value.save_as(saved[prefix])
    page.close()
    for prefix, path in saved.items():
        assert path.stat().st_size <= 5 * MB
        replays(offline_page, path, f"app-{prefix}")
