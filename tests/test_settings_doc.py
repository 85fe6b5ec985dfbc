"""docs/settings.md is generated from the settings classes; it must list every key as they are now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shopsense.config import Settings

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "settings_doc.py"


def _script():
    spec = importlib.util.spec_from_file_location("settings_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_page_is_up_to_date():
    doc = _script()
    assert doc.PAGE.read_text(encoding="utf-8") == doc.render(), "run: python scripts/settings_doc.py"


def test_the_page_has_a_row_for_every_key_of_every_section():
    page = _script().render()
    assert "## [engine]" in page and "### [engine.als]" in page and "## [online]" in page

    def keys(model: type, path: str) -> list[tuple[str, str]]:
        out = []
        for name, field in model.model_fields.items():
            sub = next(
                (
                    t
                    for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if hasattr(t, "model_fields")
                ),
                None,
            )
            out += keys(sub, f"{path}.{name}".lstrip(".")) if sub else [(path, name)]
        return out

    sections = page.split("\n#")
    for path, name in keys(Settings, ""):
        title = f" [{path}]\n" if path else " Top level\n"
        section = next(s for s in sections if s.lstrip("#").startswith(title))
        assert f"| `{name}` |" in section, (path, name)
