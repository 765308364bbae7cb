"""The accessibility pass: axe-core (npm's ``axe-core``, installed by ``make install-test`` into
web/node_modules) injected into a page by Playwright, WCAG 2.0-2.2 A and AA rules only.
The tab's context must bypass the page's CSP (``open_tab(bypass_csp=True)``): our CSP rightly
refuses inline scripts, and the injected axe is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
# axe keeps its "experimental" rules off unless named; the WCAG ones among them are run too
# (label-content-name-mismatch, WCAG 2.5.3, is one: the audit in issue 27 found it).
_RUN = """async (tags) => {
  const rules = Object.fromEntries(axe.getRules(tags).filter((r) => r.tags.includes("experimental")).map((r) => [r.ruleId, { enabled: true }]));
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, rules, resultTypes: ["violations"] });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")} ${n.html.slice(0, 160)}`) }));
}"""


def violations(page: Any) -> list[str]:
    """axe-core's WCAG A/AA violations on the page as it is now, one line each."""
    if not AXE_JS.exists():
        # A missing axe must fail loudly, never pass as a skip.
        pytest.fail(f"axe-core is not installed at {AXE_JS} (make install-test runs npm ci in web/)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=AXE_JS.read_text())
    found = page.evaluate(_RUN, TAGS)
    return [f"{v['id']} ({v['impact']}) at {page.url}: {v['nodes']}" for v in found]
