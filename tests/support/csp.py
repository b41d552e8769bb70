"""Content-Security-Policy violations seen by a Playwright page: the browser
tests assert there are none (the policy blocks nothing the pages need)."""
from __future__ import annotations

# Runs in every document before its own scripts: keeps each violation the page reports.
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                              " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


class CspWatch:
    """Collects "Refused to ..." console messages and securitypolicyviolation
    events of ``page``; ``violations()`` includes those of the current document."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.add_init_script(_RECORD_VIOLATIONS)
        page.on("console", lambda message: "Refused to" in message.text and self.console.append(message.text))

    def violations(self) -> list[str]:
        in_page = self.page.evaluate("window.__cspViolations || []")
        return self.console + in_page

    def assert_none(self) -> None:
        found = self.violations()
        assert found == [], f"Content-Security-Policy violations: {found}"
