"""The report in a real browser: headless Chromium (the system's, from Debian's `chromium` package)
driven by playwright opens the pages from file://, with no server.

Skips only when no Chromium can be found or started, and says why. Screenshots go to pytest's
temporary folder, or to $SAGE_REPORT_SCREENSHOTS when set (docs/img/ is made that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sage.report import gather
from sage.report.inputs import read_results

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium_path() -> str | None:
    env = os.environ.get("SAGE_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (the [test] extra)"
    )
    exe = chromium_path()
    if exe is None:
        pytest.skip(
            "no Chromium on PATH: install Debian's `chromium` (apt-get install -y chromium), as .ci/run does"
        )
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        except Exception as exc:  # a browser that cannot start here is a skip, with its reason
            pytest.skip(f"Chromium at {exe} did not start: {exc}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = os.environ.get("SAGE_REPORT_SCREENSHOTS")
    path = Path(out) if out else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, url: str, scheme: str = "light"):
    """A page at `url`, collecting console errors and uncaught exceptions."""
    page = browser.new_page(viewport={"width": 1100, "height": 820}, color_scheme=scheme)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, errors


def test_index_lists_sorts_and_filters_features(browser, site, results, shots):
    page, errors = open_page(browser, (site / "index.html").as_uri())
    rows = page.locator("#features tbody tr")
    assert rows.count() == 3
    for f in read_results(results):
        assert page.locator(f'#features a[href="{gather.page_name(f)}"]').count() == 2
    col = page.locator("#features thead th").nth(0)
    col.locator("button").click()
    asc = [int(t) for t in page.locator("#features tbody tr td:first-child").all_inner_texts()]
    col.locator("button").click()
    desc = [int(t) for t in page.locator("#features tbody tr td:first-child").all_inner_texts()]
    assert asc == sorted(asc) and desc == sorted(asc, reverse=True)
    assert col.get_attribute("aria-sort") == "descending"
    # sort by a score column: numbers, not strings
    page.locator("#features thead th button", has_text="detection accuracy").click()
    heads = page.locator("#features thead th").all_inner_texts()
    col_n = next(i for i, h in enumerate(heads, 1) if h.startswith("detection accuracy"))
    scores = [float(t) for t in page.locator(f"#features tbody tr td:nth-child({col_n})").all_inner_texts()]
    assert scores == sorted(scores)
    # the example column: the strongest corpus context around its peak, the peak marked, its value on hover
    example = page.locator("#features td.example .tok.max").first
    example.hover()
    assert "(max)" in page.locator("#tip").inner_text()
    page.fill("#filter", str(asc[0]))
    assert page.locator("#features tbody tr:not(.hidden)").count() >= 1
    assert page.locator("#shown").inner_text().endswith("of 3 features")
    page.fill("#filter", "no such label anywhere")
    assert page.locator("#features tbody tr:not(.hidden)").count() == 0
    page.fill("#filter", "")
    page.screenshot(path=str(shots / "report-index.png"))
    assert errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_feature_page_heatmaps_tooltips_and_keyboard(browser, site, store, results, shots, scheme):
    f = next(iter(read_results(results)))
    page, errors = open_page(browser, (site / gather.page_name(f)).as_uri(), scheme)
    for sel in (
        "#activations .legend",
        ".hist svg rect.bar",
        "#top-contexts .heat",
        "#hypotheses table",
        "#probes .probe .heat",
        "#steering",
        "#scores table",
        "#cost",
    ):
        assert page.locator(sel).count() >= 1, sel
    top = store.top(f, 1)[0]
    peak = page.locator("#top-contexts .heat").first.locator(".tok.max")
    assert peak.get_attribute("data-act") == f"{top.max_act:.4f}"
    # hover: the tooltip shows the stored value
    peak.hover()
    tip = page.locator("#tip")
    assert tip.is_visible() and f"{top.max_act:.4f}" in tip.inner_text() and "(max)" in tip.inner_text()
    # keyboard: tab into the first heat-map lands on its max token; arrows move; the tooltip follows
    page.locator("#top-contexts .heat").first.focus()
    focused = page.evaluate("document.activeElement.getAttribute('data-act')")
    assert focused == f"{top.max_act:.4f}"
    page.keyboard.press("Home")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == tip.inner_text()
    assert "sink" in tip.inner_text()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == top.tokens[1].replace("\n", "⏎")
    # dark mode really changes the colours (readable on its own background)
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(13, 17, 23)")
    toggle = page.locator("#toggle-values")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    shown = page.evaluate(
        "getComputedStyle(document.querySelector('#top-contexts .tok.max'), '::after').content"
    )
    assert shown == f'"{top.max_act:.4f}"'
    toggle.click()
    # the picture: the legend, the histogram and the top contexts, the tooltip on the first peak
    page.evaluate("document.getElementById('activations').scrollIntoView()")
    page.locator("#top-contexts .heat").first.locator(".tok.max").hover()
    name = "report-feature.png" if scheme == "light" else "report-feature-dark.png"
    page.screenshot(path=str(shots / name))
    assert errors == []
