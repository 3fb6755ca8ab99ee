"""One headless Chromium (Debian's, through Playwright) for the browser tests of a module."""

import pytest

from workshop.browser import launch


@pytest.fixture(scope="module")
def browser():
    # Playwright is a dev dependency (make setup installs it): missing, it is an error, never a skip.
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
