"""Write docs/settings.md, the settings reference, from the pydantic models themselves.

    python scripts/settings_doc.py          # rewrite the page
    python scripts/settings_doc.py --check  # exit 1 when the page is out of date (tests/test_settings_doc.py)

Every key of :class:`shopsense.config.Settings` gets a row with its default, allowed values and
meaning, so the page cannot drift from the code.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shopsense.config import Settings
from shopsense.engine_config import Knobs

PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

INTRO = """\
# Settings reference

Every setting of shopsense, with its default. Generated from the settings classes
(`src/shopsense/config.py`, `src/shopsense/engine_config.py`) by `python scripts/settings_doc.py`;
`tests/test_settings_doc.py` fails when this page is out of date, so edit the classes, not the page.

## How to set them

- **A TOML file**, given with `shopsense --config shop.toml COMMAND` (or `SHOPSENSE_CONFIG=shop.toml`).
  Each section below is a table of that file:

  ```toml
  [engine]
  ranker = "lambdarank"   # the LightGBM LambdaRank ranker instead of the tuned fusion
  sequential = false      # a source turned off (TOML has no null: false means off)

  [engine.als]            # ALS is off by default; a table (even an empty one) turns it on
  factors = 128

  [online]
  diversity = 0.2
  cold_slot = false       # no reserved slot for new products
  ```

- **Environment variables**: `SHOPSENSE_` + the section path and key joined by `__`, e.g.
  `SHOPSENSE_ENGINE__ALS__FACTORS=128`, `SHOPSENSE_ONLINE__DIVERSITY=0.2`,
  `SHOPSENSE_ENGINE__SEQUENTIAL=false`. A key set in the TOML file wins over its variable; the
  command-line options `--store` and `--home` win over both.
- A table for one source (`[engine.covisit]`) changes only the keys it names; the others keep the
  defaults listed here (for some sources these differ from the model's own defaults).
- Unknown keys and bad values fail when the settings load, naming the key
  (`invalid settings: engine.ranker: Input should be 'fusion' or 'lambdarank'`).
- `shopsense serve` hands its settings (file included) to its worker and trainer processes.
- `[engine]` applies when a version is trained (`shopsense train`, `POST /train`, evaluation);
  `[online]` to every recommendation request of the version being served.
"""


def render() -> str:
    """The whole page."""
    out = [INTRO]
    top = [(n, f) for n, f in Settings.model_fields.items() if _model_of(f) is None]
    out.append(_table("Top level", "", "`SHOPSENSE_<KEY>`", top))
    for name, field in Settings.model_fields.items():
        if _model_of(field) is not None:
            out.extend(_section(name, field, level=2))
    return "\n".join(out).rstrip() + "\n"


def _section(path: str, field: FieldInfo, level: int) -> list[str]:
    model = _model_of(field)
    assert model is not None
    doc = " ".join((model.__doc__ or "").split())
    if field.description:
        doc = f"{field.description[0].upper()}{field.description[1:]}. {doc}".strip()
    if _optional(field):
        state = "off" if field.default is None else "on"
        key = path.rsplit(".", 1)[-1]
        doc += f" **{state.capitalize()} by default**: `{key} = false` in `[{path.rsplit('.', 1)[0]}]` turns it off,"
        doc += f" a `[{path}]` table (even empty) turns it on."
    rows = [(n, f) for n, f in model.model_fields.items() if _model_of(f) is None]
    defaults = field.get_default(call_default_factory=True)
    env = "SHOPSENSE_" + path.upper().replace(".", "__") + "__<KEY>"
    out = [_table(f"[{path}]", doc.strip(), f"`{env}`", rows, defaults, level, issubclass(model, Knobs))]
    for name, sub in model.model_fields.items():
        if _model_of(sub) is not None:
            child = getattr(defaults, name, None) if defaults is not None else None
            out.extend(_section(f"{path}.{name}", _with_default(sub, child), level + 1))
    return out


def _with_default(field: FieldInfo, default: Any) -> FieldInfo:
    # the parent's default instance may differ from the field class's own defaults
    copy = FieldInfo.merge_field_infos(field)
    copy.default, copy.default_factory = default, None
    return copy


def _table(
    title: str,
    doc: str,
    env: str,
    rows: list[tuple[str, FieldInfo]],
    defaults: BaseModel | None = None,
    level: int = 2,
    switchable: bool = False,
) -> str:
    lines = [f"{'#' * level} {title}", ""]
    if doc:
        lines += [doc, ""]
    lines += [f"Variables: {env}.", ""]
    lines += ["| key | default | values | meaning |", "|---|---|---|---|"]
    for name, f in rows:
        value = getattr(defaults, name) if defaults is not None else f.get_default(call_default_factory=True)
        allowed = _allowed(f)
        if switchable and _optional(f):  # TOML has no null (see engine_config.Knobs)
            allowed = f"{allowed}; `false`: none" if allowed else "`false`: none"
        lines.append(f"| `{name}` | {_value(value)} | {allowed} | {_cell(f.description or '')} |")
    return "\n".join(lines) + "\n"


def _model_of(field: FieldInfo) -> type[BaseModel] | None:
    for t in (field.annotation, *get_args(field.annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _optional(field: FieldInfo) -> bool:
    return get_origin(field.annotation) in (Union, types.UnionType) and type(None) in get_args(field.annotation)


def _value(v: Any) -> str:
    if v is None:
        return "unset"
    if isinstance(v, BaseModel):
        return "on"
    return f"`{_toml(v)}`"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str | Path):
        return f'"{v}"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


TYPES = {bool: "`true`, `false`", int: "integer", float: "number", str: "text", Path: "path"}


def _allowed(field: FieldInfo) -> str:
    if get_origin(field.annotation) in (Literal, dict, list):
        args = [field.annotation]
    else:
        args = [a for a in (get_args(field.annotation) or (field.annotation,)) if a is not type(None)]
    literal = next((a for a in args if get_origin(a) is Literal), None)
    if literal is not None:
        return ", ".join(f"`{_toml(x)}`" for x in get_args(literal))
    base = args[0] if len(args) == 1 else None
    if get_origin(base) is dict:
        return "table of numbers"
    if get_origin(base) is list:
        inner = get_args(base)[0] if get_args(base) else str
        inner = get_args(inner)[0] if get_origin(inner) is Annotated else inner
        return "list of numbers" if inner in (int, float) else "list of text"
    bounds = []
    for m in field.metadata:
        for cls, attr, sign in ((at.Ge, "ge", "≥"), (at.Gt, "gt", ">"), (at.Le, "le", "≤"), (at.Lt, "lt", "<")):
            if isinstance(m, cls):
                bounds.append(f"{sign} {getattr(m, attr)}")
    kind = TYPES.get(base, "") if isinstance(base, type) else ""
    return " ".join(filter(None, [kind, ", ".join(bounds)]))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str]) -> int:
    page = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE} is out of date: run python scripts/settings_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
