"""A clone of the project runs its own tests: nothing in it reads files from outside its tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The folder beside the checkout that only the developers' machines have.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|" + "shared" + r"/reference|['\"]" + "shared"
                     + r"['\"]")


def test_no_project_file_reads_outside_the_tree() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("archspec", "tests", "benches", "scripts", ".ci")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".lark", ".sh", ""} and path != Path(__file__)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_reference_figures_are_vendored() -> None:
    assert (ROOT / "tests" / "reference" / "networks.json").is_file()
