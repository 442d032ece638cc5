"""Layout of the built site as a reader's browser shows it: nothing cut off, nothing covered.

Headless Chromium (Debian's ``chromium``, driven by Playwright: no browser download) opens every page
of the site that ``mkdocs build`` wrote, at a desktop width (1400 px) and a phone width (390 px), and
reads the laid-out page:

- at 1400 px no table and no code block needs horizontal scrolling (``scrollWidth`` beyond
  ``clientWidth``), wrappers included: Material puts tables and code in scroll areas, which would
  hide the columns and line ends that do not fit;
- at both widths no copy button lies over the text of its code block, the page itself never scrolls
  sideways (at 390 px only the table and code wrappers may), and the text of every SVG diagram is
  drawn at 9 px or more (its font size times the scale the SVG is shown at);
- at both widths every table cell, code line and diagram is inside the viewport or inside a container
  that scrolls sideways and shows a visible cue (a shadow drawn by a background gradient on the side
  with more to see), so no column is off-screen unannounced;
- at 1400 px a wrapped code line goes on under its own start (its indent kept), never at the left
  margin, where it would read as a new line.

The site tests run when ``BLOCKS_DOCS_SITE`` names the built site, as in tests/test_docs.py (``.ci/run``
sets it after the build). ``BLOCKS_LAYOUT_SHOTS=1`` also saves a screenshot of each page under
``<site>/_layout/`` (a debugging aid; the site folder is not committed). The checker's own tests build a
small page with every kind of defect and need only the browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = os.environ.get("BLOCKS_DOCS_SITE")
CHROMIUM = os.environ.get("BLOCKS_CHROMIUM", "/usr/bin/chromium")
WIDTHS = {"desktop": 1400, "phone": 390}
MIN_FONT_PX = 9.0
# Copy buttons: a ``button.md-code__button`` in a ``nav.md-code__nav`` (current Material), ``.md-clipboard`` before.
COPY_BUTTONS = ".md-code__button[data-md-type=copy], .md-clipboard"

# Every page of the site: one per Markdown file of docs/ (use_directory_urls is off: page.md -> page.html).
PAGES = sorted(path.with_suffix(".html").name for path in (ROOT / "docs").glob("*.md"))

# Runs in the page; returns one line per defect. `wide` is true at the desktop width.
CHECK_JS = r"""
(wide) => {
  const BUTTONS = "%(buttons)s";
  const problems = [];
  const shown = (el) => el.getClientRects().length > 0;
  const where = (el) => {
    const id = el.closest("[id]");
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 50);
    return `${el.tagName.toLowerCase()}${id ? " in #" + id.id : ""} "${text}"`;
  };
  // Tables and code blocks, and the scroll areas Material wraps them in.
  const boxes = ".md-typeset__scrollwrap, .md-typeset__table, .md-typeset table, "
    + ".highlight pre, .highlight pre > code, .highlight table";
  if (wide) {
    for (const el of document.querySelectorAll(boxes)) {
      if (shown(el) && el.scrollWidth > el.clientWidth + 1) {
        problems.push(`scrolls sideways (${el.scrollWidth} px in ${el.clientWidth} px): ${where(el)}`);
      }
    }
  }
  const page = document.scrollingElement;
  if (page.scrollWidth > page.clientWidth + 1) {
    problems.push(`the page scrolls sideways: ${page.scrollWidth} px in ${page.clientWidth} px`);
  }
  // Copy buttons: no word of their code block's visible text under them.
  const meets = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  for (const button of document.querySelectorAll(BUTTONS)) {
    const block = button.closest("pre");
    const code = block && block.querySelector("code");
    if (!code || !shown(button)) continue;
    const area = block.getBoundingClientRect();
    const hit = button.getBoundingClientRect();
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let covered = null;
    while (!covered && walker.nextNode()) {
      const node = walker.currentNode;
      for (const word of node.data.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        for (const r of range.getClientRects()) {
          if (r.right > area.left && r.left < area.right && meets(r, hit)) covered = word[0];
        }
        if (covered) break;
      }
    }
    if (covered) problems.push(`the copy button covers "${covered}": ${where(code)}`);
  }
  // Cells, code lines and diagrams: inside the viewport, or in a container that scrolls sideways with a cue.
  const right = document.documentElement.clientWidth;
  const scroller = (el) => {
    for (let box = el.parentElement; box; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if ((overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth + 1) return box;
    }
    return null;
  };
  const cued = (box) => getComputedStyle(box).backgroundImage.includes("gradient");
  const items = ".md-typeset td, .md-typeset th, .md-typeset pre > code, .md-typeset svg";
  for (const el of document.querySelectorAll(items)) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right <= right + 1 && r.left >= -1) continue;
    const box = scroller(el) || (el.scrollWidth > el.clientWidth + 1
      && ["auto", "scroll"].includes(getComputedStyle(el).overflowX) ? el : null);
    if (!box) problems.push(`off-screen and not in a scroll area (${Math.round(r.right)} px of ${right}): ${where(el)}`);
    else if (!cued(box)) problems.push(`scrolls sideways without a visible cue: ${where(box)}`);
  }
  for (const box of document.querySelectorAll(".md-typeset .md-typeset__scrollwrap, .md-typeset pre > code, "
                                            + ".md-typeset figure")) {
    const overflow = getComputedStyle(box).overflowX;
    if (shown(box) && (overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth + 1
        && !cued(box)) {
      problems.push(`scrolls sideways without a visible cue: ${where(box)}`);
    }
  }
  // Wrapped code lines: every continuation of a line starts right of the line's first character.
  const at = (nodes, offset) => {  // the text node and offset of a character offset of the code's text
    for (const [node, from] of nodes) if (offset < from + node.data.length) return [node, offset - from];
    const [node, from] = nodes[nodes.length - 1];
    return [node, node.data.length];
  };
  const span = (nodes, from, to) => {
    const range = document.createRange();
    range.setStart(...at(nodes, from));
    range.setEnd(...at(nodes, to));
    return range;
  };
  if (wide) {
    for (const code of document.querySelectorAll(".md-typeset pre > code")) {
      if (!shown(code)) continue;
      const nodes = [];
      const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
      let length = 0;
      while (walker.nextNode()) {
        nodes.push([walker.currentNode, length]);
        length += walker.currentNode.data.length;
      }
      if (!nodes.length) continue;
      const text = nodes.map(([node]) => node.data).join("");
      let from = 0;
      for (const line of text.split("\n")) {
        const first = line.search(/\S/);
        if (first >= 0) {
          const rects = [...span(nodes, from, from + line.length).getClientRects()].filter((r) => r.width > 0);
          const start = span(nodes, from + first, from + first + 1).getBoundingClientRect();
          if (rects.some((r) => r.top > start.bottom - 1 && r.left < start.left + 1)) {
            problems.push(`a wrapped code line goes on left of its start: ${where(code)} "${line.trim().slice(0, 40)}"`);
          }
        }
        from += line.length + 1;
      }
    }
  }
  // Diagram text: its font size in user units times the SVG's scale on screen.
  for (const text of document.querySelectorAll(".md-typeset svg text")) {
    if (!shown(text) || !text.textContent.trim()) continue;
    const m = text.getScreenCTM();
    const scale = Math.sqrt(m.a * m.a + m.b * m.b);
    const size = parseFloat(getComputedStyle(text).fontSize) * scale;
    if (size < %(min)s) {
      problems.push(`diagram text at ${size.toFixed(1)} px: "${text.textContent.trim().slice(0, 40)}"`);
    }
  }
  return problems;
}
""".replace("%(min)s", str(MIN_FONT_PX)).replace("%(buttons)s", COPY_BUTTONS)

# Shows what a reader can open: every tab of a tabbed block and every collapsed <details>.
REVEAL_JS = """
() => {
  const style = document.createElement("style");
  style.textContent = ".tabbed-set > .tabbed-content > .tabbed-block { display: block !important; }";
  document.head.append(style);
  for (const details of document.querySelectorAll("details")) details.open = true;
}
"""


def find_chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; a site test fails without it (CI installs it), the checker's own tests skip."""
    executable = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        if SITE:
            pytest.fail("BLOCKS_DOCS_SITE is set but Playwright or Chromium is missing (pip install -e '.[docs]', "
                        "apt-get install chromium)")
        pytest.skip("needs Playwright and Debian's chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=list(WIDTHS))
def tab(browser, request):
    """One browser tab per width, reused page after page."""
    context = browser.new_context(viewport={"width": WIDTHS[request.param], "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield request.param, page
    context.close()


def layout_problems(page, url: str, wide: bool, shot: Path | None = None) -> list[str]:
    """Open ``url`` and return the layout defects the checker finds there."""
    page.goto(url, wait_until="load")
    # Material adds the copy buttons from its script once the page has loaded.
    page.wait_for_function(f"() => !document.querySelector('.md-container .highlight pre')"
                           f" || document.querySelector('{COPY_BUTTONS}')")
    page.evaluate("document.fonts.ready")
    page.evaluate(REVEAL_JS)
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    return page.evaluate(CHECK_JS, wide)


# -------------------------------------------------------------------------------------- the checker

SAMPLE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
  body {{ margin: 0; font: 16px sans-serif; }}
  .md-typeset {{ width: 300px; }}
  .md-typeset__scrollwrap {{ overflow-x: auto; }}
  pre {{ position: relative; overflow: auto; margin: 0; }}
  .md-code__nav {{ position: absolute; top: 0; right: 0; }}
  .md-code__button {{ display: block; width: 24px; height: 24px; }}
</style></head><body><div class="md-typeset">{body}</div></body></html>
"""

COPY = '<nav class="md-code__nav"><button class="md-code__button" data-md-type="copy"></button></nav>'
DEFECTS = {
    "table": '<div class="md-typeset__scrollwrap"><table><tr>' + "<td>column</td>" * 12 + "</tr></table></div>",
    "code": '<div class="highlight"><pre><code>' + "long_line_of_code() " * 10 + "</code></pre></div>",
    "button": f'<div class="highlight"><pre>{COPY}<code>words that run under the button</code></pre></div>',
    "svg": ('<svg viewBox="0 0 600 100" width="300"><text x="0" y="50" font-size="12">shown at 6 px</text></svg>'),
    "page": '<div style="width: 2000px">wide</div>',
    "uncued": ('<div class="md-typeset__scrollwrap"><table><tr>' + "<td>column</td>" * 30 + "</tr></table></div>"),
    "indent": ('<div class="highlight"><pre><code style="white-space: pre-wrap">first_line()\n    indented_call('
               + "argument, " * 12 + ")\nlast_line()</code></pre></div>"),
}


def sample_problems(page, tmp_path: Path, body: str, wide: bool = True) -> list[str]:
    path = tmp_path / "sample.html"
    path.write_text(SAMPLE.format(body=body), encoding="utf-8")
    return layout_problems(page, path.as_uri(), wide)


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_layout_checker_flags_each_defect(tab, tmp_path, defect):
    width, page = tab
    if width == "phone" and defect in ("table", "code", "indent"):
        pytest.skip("a table or code block may scroll inside its wrapper on a phone; lines wrap only on a desktop")
    expected = {"table": "scrolls sideways", "code": "scrolls sideways", "button": 'covers "',
                "svg": "diagram text at 6.0 px", "page": "the page scrolls sideways",
                "uncued": "scrolls sideways without a visible cue",
                "indent": "a wrapped code line goes on left of its start"}[defect]
    problems = sample_problems(page, tmp_path, DEFECTS[defect], wide=width == "desktop")
    assert any(expected in problem for problem in problems), problems


def test_layout_checker_passes_a_page_that_fits(tab, tmp_path):
    _, page = tab
    body = ('<div class="md-typeset__scrollwrap"><table><tr><td>a</td><td>b</td></tr></table></div>'
            f'<div class="highlight"><pre>{COPY}'
            '<code style="display: block; padding-right: 30px; white-space: pre-wrap; padding-left: 2ch; '
            'text-indent: -2ch">'
            + "wrapped words " * 10 + "</code></pre></div>"
            '<svg viewBox="0 0 300 100" width="300"><text x="0" y="50" font-size="12">12 px</text></svg>')
    assert sample_problems(page, tmp_path, body, wide=True) == []


CUE = "background: linear-gradient(to left, #0003, transparent) right / 1em 100% no-repeat scroll;"


def test_layout_checker_passes_a_cued_scroll_area_and_a_hanging_indent(tab, tmp_path):
    _, page = tab
    body = (f'<div class="md-typeset__scrollwrap" style="{CUE}"><table><tr>' + "<td>column</td>" * 30
            + "</tr></table></div>"
            '<div class="highlight"><pre><code style="white-space: pre-wrap">'
            '<span id="__span-0-1" style="display: block; padding-left: 6ch; text-indent: -6ch">    indented_call('
            + "argument, " * 12 + ")</span></code></pre></div>")
    assert sample_problems(page, tmp_path, body, wide=False) == []
    assert not [p for p in sample_problems(page, tmp_path, body, wide=True) if "left of its start" in p]


# -------------------------------------------------------------------------------------- built site

needs_site = pytest.mark.skipif(not SITE, reason="set BLOCKS_DOCS_SITE to the built site (mkdocs build) to run")


@needs_site
@pytest.mark.parametrize("name", PAGES)
def test_site_page_layout(tab, name):
    width, page = tab
    path = Path(SITE).resolve() / name
    assert path.exists(), f"{name} is not in the built site"
    shot = path.parent / "_layout" / f"{path.stem}-{width}.png" if os.environ.get("BLOCKS_LAYOUT_SHOTS") else None
    problems = layout_problems(page, path.as_uri(), wide=width == "desktop", shot=shot)
    assert not problems, f"{name} at {WIDTHS[width]} px:\n" + "\n".join(problems)
