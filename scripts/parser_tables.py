"""Write archspec/lang/tables.json: the parser's LALR tables for the grammar as it is now (run
after changing lang/grammar.lark or the registry's joins; a stale file is ignored, not used)."""

from __future__ import annotations

import json
from pathlib import Path

from archspec.core.files import write_atomic
from archspec.lang.parser import build_tables, grammar_text, tables_to_json

TARGET = Path(__file__).resolve().parent.parent / "archspec" / "lang" / "tables.json"


def render() -> str:
    return json.dumps(tables_to_json(build_tables(grammar_text())), separators=(",", ":")) + "\n"


if __name__ == "__main__":
    write_atomic(TARGET, render())
    print(f"wrote {TARGET}")
