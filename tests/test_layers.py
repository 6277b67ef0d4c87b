"""The package's layers (docs/architecture.md): each imports only the ones above it, and
nothing above the back ends imports torch or the trainer's libraries."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "archspec"
# Top to bottom; a module may import its own layer and those before it.
ORDER = ("core", "catalog", "ir", "kinds", "lang", "analysis", "views", "backends", "runtime",
         "cli")
# The public modules at the top of the package come after every layer.
PUBLIC = ("__init__", "__main__", "pytorch", "testing")
ONLY = {"kinds": {"core", "ir", "kinds"}}
HEAVY = {"torch", "torchinfo", "kornia", "sklearn", "mlxtend", "matplotlib", "PIL", "numpy"}


def layer_of(module: str) -> str:
    """`archspec.lang.parser` -> `lang`; `archspec.ir` -> `ir`; `archspec` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside functions, as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            # `from archspec import dot` imports the module archspec.dot
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if node.module == "archspec")
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def rank(layer: str) -> int:
    if layer in PUBLIC:
        return len(ORDER)
    assert layer in ORDER, f"archspec/{layer} is in no layer: add it to docs/architecture.md"
    return ORDER.index(layer)


def test_every_module_imports_only_layers_above_it() -> None:
    wrong = []
    for name, path in modules():
        mine = layer_of(name)
        for imported in imports(path):
            if imported.split(".")[0] != "archspec" or imported == "archspec":
                continue
            theirs = layer_of(imported)
            allowed = ONLY.get(mine)
            if rank(theirs) > rank(mine) or (allowed is not None and theirs not in allowed):
                wrong.append(f"{name} ({mine}) imports {imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


# Modules below the line that still import no torch: the emitter writes text only.
TEXT_ONLY = {"archspec.backends.torch.emit", "archspec.backends.torch.layers"}


def test_nothing_above_the_back_ends_imports_torch() -> None:
    light = ORDER[:ORDER.index("backends")]
    wrong = [f"{name} imports {imported}" for name, path in modules()
             if layer_of(name) in light or name in TEXT_ONLY for imported in imports(path)
             if imported.split(".")[0] in HEAVY]
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from archspec.views import table\n    import torch\n")
    assert {"archspec.views", "torch"} <= imports(bad)
    assert rank(layer_of("archspec.views.table")) > rank(layer_of("archspec.lang.parser"))
