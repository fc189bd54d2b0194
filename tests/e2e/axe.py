"""Run axe-core in the page under test and return its serious and critical findings."""

from __future__ import annotations

from pathlib import Path

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")


def serious_violations(page) -> list[dict]:
    # page.evaluate goes through the DevTools protocol, so the page's CSP (no inline or eval'd
    # script) does not stop the audit.
    page.evaluate(AXE)
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
