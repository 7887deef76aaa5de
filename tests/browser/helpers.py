"""What the browser tests do on every page: accessibility basics, keyboard moves, copy and paste."""
from __future__ import annotations

import re
from functools import partial

from tests.servers import wait_for

# Run in the page: the basics a screen reader or keyboard user needs, as a list of problems.
_A11Y_SCRIPT = r"""
() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
      && getComputedStyle(el).visibility !== "hidden";
  const text = (el) => (el ? el.textContent.replace(/\s+/g, " ").trim() : "");
  const labelledBy = (el) => (el.getAttribute("aria-labelledby") || "").split(/\s+/)
      .filter(Boolean).map((id) => text(document.getElementById(id))).join(" ").trim();
  const describe = (el) => `<${el.tagName.toLowerCase()} id="${el.id}" name="${el.getAttribute("name") || ""}" type="${el.getAttribute("type") || ""}">`;
  for (const el of document.querySelectorAll("input, select, textarea")) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (["hidden", "submit", "button", "reset", "image"].includes(type) || !visible(el)) continue;
    const fromLabels = Array.from(el.labels || []).map(text).join(" ").trim();
    const name = fromLabels || (el.getAttribute("aria-label") || "").trim() || labelledBy(el);
    if (!name) problems.push(`field without a label: ${describe(el)}`);
  }
  for (const el of document.querySelectorAll("button, a[href], input[type=submit], input[type=button]")) {
    if (!visible(el)) continue;
    const name = text(el) || (el.getAttribute("aria-label") || "").trim() || labelledBy(el)
        || (el.getAttribute("value") || "").trim() || (el.getAttribute("title") || "").trim();
    if (!name) problems.push(`control without a name: ${el.outerHTML.slice(0, 120)}`);
  }
  const ids = {};
  for (const el of document.querySelectorAll("[id]")) ids[el.id] = (ids[el.id] || 0) + 1;
  for (const [id, count] of Object.entries(ids)) if (count > 1) problems.push(`id used ${count} times: ${id}`);
  return {lang: document.documentElement.getAttribute("lang"), title: document.title.trim(),
          h1: document.querySelectorAll("h1").length, problems};
}
"""


def check_accessible(page, lang: str) -> None:
    """Assert the current page declares its language, has a title and one h1, labels every
    visible field (label[for], a wrapping label, aria-label or aria-labelledby), names every
    button and link, and repeats no id."""
    facts = page.evaluate(_A11Y_SCRIPT)
    where = page.url
    assert facts["lang"] == lang, f"{where}: <html lang> is {facts['lang']!r}, expected {lang!r}"
    assert facts["title"] and not facts["title"].startswith("·"), f"{where}: empty <title> ({facts['title']!r})"
    assert facts["h1"] == 1, f"{where}: {facts['h1']} <h1> on the page"
    assert facts["problems"] == [], f"{where}: {facts['problems']}"


# The focused element's accessible name, as a person hears it (label, text, or aria-label).
_FOCUSED_NAME = r"""
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  const text = (node) => (node ? node.textContent.replace(/\s+/g, " ").trim() : "");
  const fromLabels = Array.from(el.labels || []).map(text).join(" ").trim();
  return (el.getAttribute("aria-label") || "").trim() || fromLabels || text(el) || (el.getAttribute("value") || "");
}
"""


def tab_to(page, name: str | re.Pattern, *, within: str | None = None, max_presses: int = 80) -> None:
    """Press Tab (only Tab) until the focused element's accessible name matches `name` (and, with
    `within`, the element is inside that CSS selector: a page may name two buttons alike)."""
    pattern = name if isinstance(name, re.Pattern) else re.compile(rf"^{re.escape(name)}$")
    seen = []
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED_NAME)
        inside = within is None or page.evaluate("(s) => !!document.activeElement.closest(s)", within)
        if pattern.search(focused) and inside:
            return
        seen.append(focused)
    raise AssertionError(f"{page.url}: Tab never reached {pattern.pattern!r}; focus went through {seen}")


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def copy_with(page, button) -> str:
    """Click a copy button (data-copy) and return what it put on the clipboard."""
    page.evaluate("navigator.clipboard.writeText('')")
    button.click()
    page.wait_for_function("(b) => b.dataset.copied === 'true'", arg=button.element_handle())
    copied = clipboard(page)
    assert copied, "the copy button put nothing on the clipboard"
    return copied


def paste_into(field) -> str:
    """Paste the clipboard into a field with Ctrl+V (replacing its content); return the value."""
    field.click()
    field.press("ControlOrMeta+A")
    field.press("ControlOrMeta+V")
    return field.input_value()


# Call `check()` until it returns something truthy (e.g. after reloading a page); pages reload
# between checks, so a slower pace than the servers' polling.
poll = partial(wait_for, interval=0.25)
