"""Everything the package imports is declared in pyproject.toml (not only pulled in by others).

Imports are read from the source, including the ones made by name (``importlib.resources.files
("timm.data._info")``, the sample dataset's packages), and mapped to the installed
distributions; a distribution that is only a transitive dependency today can disappear with
the next release of whatever brings it.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import cliprobe

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PACKAGE = Path(cliprobe.__file__).parent
#: Imported only inside the optional feature they serve, declared as that extra.
NOT_INSTALLED = {"kaggle": "kaggle"}
NAMED_IMPORT = re.compile(r"""(?:resources\.files|import_module|find_spec)\(\s*["']([\w.]+)""")


def normalise(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement.strip())[0]).lower()


def imported_modules() -> set[str]:
    """Top-level names of every module imported by the package (statements and by name)."""
    found: set[str] = set()
    for file in PACKAGE.rglob("*.py"):
        text = file.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        found |= {name.split(".")[0] for name in NAMED_IMPORT.findall(text)}
    with (PACKAGE / "datasets" / "sample_photos.csv").open(newline="") as handle:
        found |= {row["package"] for row in csv.DictReader(handle)}
    return found - set(sys.stdlib_module_names) - {"cliprobe"}


def test_every_import_is_a_declared_dependency(repo: Path) -> None:
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = {normalise(r) for r in project["dependencies"]}
    optional = {normalise(r) for extra in project["optional-dependencies"].values()
                for r in extra}
    distributions = packages_distributions()
    undeclared = {}
    for module in sorted(imported_modules()):
        names = {normalise(d) for d in distributions.get(module, [])}
        if module in NOT_INSTALLED:
            names = {NOT_INSTALLED[module]}
        assert names, f"{module} is imported but no installed distribution provides it"
        if not names & (declared | optional):
            undeclared[module] = sorted(names)
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_scan_finds_imports_made_by_name() -> None:
    assert {"timm", "skimage", "sklearn", "jinja2", "yaml"} <= imported_modules()
