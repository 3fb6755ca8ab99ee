"""`make screenshots`: the pages the docs' home page shows, served for real with the demo's 2 s provider.

Writes docs/assets/screenshots/: step1-sent.png (the request took the 2 s), step4-sent.png (it answered at
once, the SMS came later) and step4-verified.png (the code from the phone, typed and verified).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from workshop.browser import TIMELINE_DONE, StepServer, launch
from workshop.steps import ROOT

OUT = Path(os.environ.get("SCREENSHOTS_OUT") or ROOT / "docs" / "assets" / "screenshots")
MOBILE = "13800138000"
# Just wide enough for the card and the phone side by side.
VIEWPORT = {"width": 800, "height": 680}


def has_chinese_font() -> bool | None:
    """Whether fontconfig knows a font with Chinese glyphs (None: cannot tell, no fc-list)."""
    if not shutil.which("fc-list"):
        return None
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30)
    return bool(listed.stdout.strip())


def save(page, name: str) -> None:
    page.screenshot(path=OUT / name)
    print(f"wrote {OUT / name}")


def send(page, server) -> None:
    page.goto(server.url)
    page.fill("#mobile", MOBILE)
    page.click("#send")
    page.wait_for_function(TIMELINE_DONE, timeout=60_000)
    page.wait_for_selector("#messages .sms", timeout=60_000)


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
            # The demo's 2 s provider: step 1's request takes it, step 4's does not.
            with StepServer(1, latency=2.0) as server:
                page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
                send(page, server)
                save(page, "step1-sent.png")
                page.close()
            with StepServer(4, latency=2.0) as server:
                page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
                send(page, server)
                save(page, "step4-sent.png")
                # The code as a person reads it: from the SMS on the phone.
                sms = page.locator("#messages .sms").first.inner_text()
                page.fill("#code", re.search(r"\d{6}", sms).group())
                page.click("#verify")
                page.wait_for_selector("#verify-result.ok", timeout=30_000)
                save(page, "step4-verified.png")
                page.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
