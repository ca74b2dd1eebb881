"""Open a `sage report` site in headless Chromium and check it the way a reader would.

    python scripts/report_check.py SITE [--top-json top.json] [--shots docs/img]

Counts the index rows, follows every row's link, checks each page has heat-maps and no console
errors, and, with `--top-json` (the output of `sage top --feature N --json`), checks that feature N's
page shows the same top contexts with the same per-token activations. `--shots` saves
report-index.png and report-feature(-dark).png (the feature of --top-json, else the first row; light
and dark colour schemes). Prints what
it saw; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("site", type=Path)
    ap.add_argument("--top-json", type=Path, default=None)
    ap.add_argument("--shots", type=Path, default=None)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    top = json.loads(args.top_json.read_text()) if args.top_json else None
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((args.site / "index.html").resolve().as_uri())
        rows = page.locator("#features tbody tr")
        links = [rows.nth(i).locator("td a").first.get_attribute("href") for i in range(rows.count())]
        print(f"index: {rows.count()} rows: {', '.join(links)}")
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.shots / "report-index.png"))
        for href in links:
            page.goto((args.site / href).resolve().as_uri())
            n_top = page.locator("#top-contexts .heat").count()
            n_probe = page.locator("#probes .heat").count()
            n_tok = page.locator(".heat .tok").count()
            print(f"{href}: {n_top} top-context heat-maps, {n_probe} probe heat-maps, {n_tok} tokens")
            if n_top == 0 or n_probe == 0:
                problems.append(f"{href}: missing heat-maps")
        shot_href = links[0]
        if top is not None:
            shot_href = f"features/{top['feature']}.html"
            page.goto((args.site / shot_href).resolve().as_uri())
            maps = page.locator("#top-contexts .heat")
            for i, ctx in enumerate(top["contexts"][: maps.count()]):
                toks = maps.nth(i).locator(".tok")
                shown = [toks.nth(j).get_attribute("data-act") for j in range(toks.count())]
                want = [f"{a:.4f}" for a in ctx["activations"]]
                peak = maps.nth(i).locator(".tok.max").get_attribute("data-act")
                ok = shown == want and peak == f"{ctx['max_activation']:.4f}"
                print(
                    f"  top {i + 1}: context {ctx['context_id']}, page peak {peak} on "
                    f"{maps.nth(i).locator('.tok.max').inner_text()!r}, `sage top --json` "
                    f"{ctx['max_activation']} on {ctx['max_token']!r}: {'same' if ok else 'DIFFERENT'} "
                    f"({len(shown)} per-token values compared)"
                )
                if not ok:
                    problems.append(f"top {i + 1} of feature {top['feature']} differs from `sage top --json`")
        if args.shots:
            for scheme, name in (("light", "report-feature.png"), ("dark", "report-feature-dark.png")):
                shot = browser.new_page(viewport={"width": 1100, "height": 760}, color_scheme=scheme)
                shot.goto((args.site / shot_href).resolve().as_uri())
                shot.evaluate("document.getElementById('activations').scrollIntoView()")
                shot.locator("#top-contexts .heat").first.locator(".tok.max").hover()
                shot.screenshot(path=str(args.shots / name))
        browser.close()
    if errors:
        problems.append(f"console errors: {errors}")
    print("OK" if not problems else "PROBLEMS:\n" + "\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
