"""The README's SQL section runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sql_section_runs() -> None:
    """Its python block runs, and the values its comments show are the real ones."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## SQL: query analysis")
    section = text[start : text.index("\n## ", start + 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    analysis = namespace["analysis"]
    assert (analysis.risk_score, analysis.positions) == (0.8, [(31, 41)])  # type: ignore[attr-defined]
    assert namespace["query"] == (
        'SELECT "id", "name", "email" FROM "users" WHERE "active" = ? AND "role" = ? LIMIT ?'
    )
    assert namespace["params"] == (True, "user", 100)
