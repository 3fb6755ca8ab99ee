"""Every Mermaid diagram of the docs, drawn by the Mermaid the site ships (docs/javascripts/), in Chromium.

`mkdocs build` passes a diagram through as text: a typo in one shows up only as "Syntax error" on the
page. Here each one is parsed and drawn, and must come out as an SVG with its labels in it.
"""

import re

import pytest

from tests.docs.pages import DOCS, code_blocks
from tests.harness import missing
from workshop.browser import INSTALL_HINT, chromium_path

MERMAID = DOCS / "javascripts" / "mermaid.min.js"

if not chromium_path():
    missing("Chromium", INSTALL_HINT)  # CI installs it (.ci/run): there a missing browser fails


def diagrams():
    found = []
    for page in sorted(DOCS.glob("*.md")):
        blocks = [body for language, body in code_blocks(page.read_text()) if language == "mermaid"]
        found += [pytest.param(body, id=f"{page.name}#{n}") for n, body in enumerate(blocks, 1)]
    return found


# What each step's diagram must show, in both languages: words of its code, not of its prose.
EXPECTED = {
    "step2": ("send_sms2.delay()", "r.get()"),
    "step3": ("send_sms.delay(", "TemplateSMS"),
    "step4": ("111120", "HTTP 503", "000000"),
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_the_step_pages_have_their_diagrams(page):
    """Step 2's sequence (.delay to AsyncResult), step 3's request-versus-SMS timeline, step 4's retries."""
    for name in (f"{page}.md", f"{page}.en.md"):
        sources = [p.values[0] for p in diagrams() if p.id.split("#")[0] == name]
        assert any(all(word in source for word in EXPECTED[page]) for source in sources), (
            f"{name}: no diagram shows {EXPECTED[page]}"
        )


@pytest.fixture(scope="module")
def mermaid(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(path=str(MERMAID))
    page.evaluate("mermaid.initialize({startOnLoad: false})")
    yield page
    page.close()


@pytest.mark.parametrize("source", diagrams())
def test_each_diagram_is_drawn(mermaid, source):
    drawn = mermaid.evaluate(
        """async (source) => {
            try {
                const {svg} = await mermaid.render("diagram" + Math.floor(Math.random() * 1e9), source);
                return {svg};
            } catch (error) {
                return {error: String(error.message || error)};
            }
        }""",
        source,
    )
    assert "error" not in drawn, drawn.get("error")
    assert drawn["svg"].startswith("<svg"), drawn["svg"][:200]
    assert "Syntax error" not in drawn["svg"]
    # A word from the diagram's first line of text is drawn (not an empty picture).
    labels = re.findall(r"(?:participant \w+ as |\[)([^\]<\n]+)", source)
    assert labels, "no label found in the diagram's source"
    assert labels[0].strip().split("（")[0].split(" (")[0] in drawn["svg"]
