"""`make screenshots`: the page before and after a send, for step 1 and step 4, for the docs.

Writes docs/assets/screenshots/step{1,4}-{before,after}.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from workshop.browser import StepServer, launch
from workshop.steps import ROOT

OUT = Path(os.environ.get("SCREENSHOTS_OUT") or ROOT / "docs" / "assets" / "screenshots")
MOBILE = "13800138000"


def has_chinese_font() -> bool | None:
    """Whether fontconfig knows a font with Chinese glyphs (None: cannot tell, no fc-list)."""
    if not shutil.which("fc-list"):
        return None
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30)
    return bool(listed.stdout.strip())


def main() -> int:
    from playwright.sync_api import sync_playwright

    if has_chinese_font() is False:
        print(
            "warning: no Chinese font is installed, so the page's Chinese text will show as boxes.\n"
            "         Install one first: sudo apt-get install fonts-noto-cjk",
            file=sys.stderr,
        )
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for step in (1, 4):
                # The demo's 2 s provider, so step 1's screenshot shows what the lesson is about.
                with StepServer(step, latency=2.0) as server:
                    page = browser.new_page(viewport={"width": 1000, "height": 640}, locale="zh-CN")
                    page.goto(server.url)
                    page.screenshot(path=OUT / f"step{step}-before.png")
                    page.fill("#mobile", MOBILE)
                    page.click("#send")
                    page.wait_for_selector("#messages .sms", timeout=60_000)
                    page.screenshot(path=OUT / f"step{step}-after.png")
                    print(f"wrote {OUT}/step{step}-before.png and step{step}-after.png")
                    page.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
