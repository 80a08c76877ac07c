"""The one error tree: exchange/core/errors.py, its drawing, docs/errors.md and the gateway.

Every exception class of the project's packages is in the tree rooted at
``ExchangeError`` and defined in ``exchange/core/errors.py``; each declares a code of its
own, unique; the module docstring draws the tree exactly (names, parents, codes,
``retriable``) and ``docs/errors.md`` shows the same drawing and lists every code, and no
other; nothing raises ``ExchangeError`` itself; no domain error carries an HTTP status,
and the statuses and Confluent ``error_code`` that docs/errors.md states are the ones
the gateway answers. The checkers are tested on small wrong inputs first, so a passing
run cannot come from a checker that finds nothing.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from exchange.core import errors
from exchange.core.errors import ExchangeError
from gateway import confluent
from gateway.problems import STATUS, status_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "schemas", "connectors", "gateway")
ERRORS_MODULE = ROOT / "exchange" / "core" / "errors.py"
DOC = ROOT / "docs" / "errors.md"
HTTP_ATTRIBUTES = {"http_status", "status", "status_code", "registry_code", "error_code"}

# --- the checkers --------------------------------------------------------------------------

_TREE_LINE = re.compile(
    r"^(?P<indent>(?:│   |    )*)(?P<branch>[├└]── )?(?P<name>[A-Za-z_]\w*)\s+"
    r"(?P<code>[a-z][a-z0-9_]*)(?:\s+(?P<retriable>retriable))?\s*$"
)


def parse_tree(drawing: str) -> dict[str, tuple[str | None, str, bool]]:
    """The classes a drawing shows: name -> (parent name, code, retriable)."""
    found: dict[str, tuple[str | None, str, bool]] = {}
    stack: list[str] = []
    for line in drawing.strip("\n").splitlines():
        m = _TREE_LINE.match(line)
        assert m, f"not a line of the tree: {line!r}"
        depth = len(m["indent"]) // 4 + (1 if m["branch"] else 0)
        assert depth <= len(stack), f"{m['name']} is drawn under no parent"
        del stack[depth:]
        assert m["name"] not in found, f"{m['name']} is drawn twice"
        found[m["name"]] = (stack[-1] if stack else None, m["code"], bool(m["retriable"]))
        stack.append(m["name"])
    return found


def docstring_tree(doc: str) -> str:
    """The drawing in the errors module's docstring (the block after ``::``)."""
    block = doc.split("::\n", 1)[1]
    lines = [line[4:] for line in block.strip("\n").splitlines()]
    return "\n".join(lines)


def doc_tree(markdown: str) -> str:
    """The drawing under docs/errors.md's "## The hierarchy" (its first fenced block)."""
    section = markdown.split("## The hierarchy", 1)[1]
    return section.split("```\n", 2)[1].rstrip("\n")


def tables(markdown: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Each Markdown table: (header cells, data rows' cells)."""
    block: list[str] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            cells = [_cells(row) for row in block]
            yield [c.lower() for c in cells[0]], cells[2:]
        block = []


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


_CLASS_CELL = re.compile(r"^`(\w+)`$")
_CODE_CELL = re.compile(r"^`([a-z][a-z0-9_]*)`$")


def documented_codes(markdown: str) -> dict[str, str]:
    """Class -> code of every table row that lists a class and its code; a class listed
    twice fails."""
    found: dict[str, str] = {}
    for header, rows in tables(markdown):
        if len(header) < 2 or header[0] != "class" or "code" not in header[1]:
            continue
        for cells in rows:
            cls, code = _CLASS_CELL.match(cells[0]), _CODE_CELL.match(cells[1])
            assert cls, f"a row of an error table without a `Class`: {cells}"
            assert code, f"a row of an error table without a `code`: {cells}"
            assert cls[1] not in found, f"{cls[1]} is listed twice"
            found[cls[1]] = code[1]
    return found


def exception_classes(sources: dict[str, str]) -> dict[str, list[str]]:
    """Every exception class defined in ``sources`` (path -> text), by name -> the paths
    that define it: classes whose base is a built-in exception or, transitively, such a
    class (found anywhere in the sources, nested classes included)."""
    defs: list[tuple[str, str, list[str]]] = []
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                bases = [_base_name(b) for b in node.bases]
                defs.append((path, node.name, [b for b in bases if b]))
    known = {n for n in dir(builtins) if _is_builtin_exception(n)}
    found: dict[str, list[str]] = {}
    changed = True
    while changed:
        changed = False
        for path, name, bases in defs:
            if path not in found.get(name, []) and any(b in known for b in bases):
                found.setdefault(name, []).append(path)
                known.add(name)
                changed = True
    return found


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_builtin_exception(name: str) -> bool:
    value = getattr(builtins, name)
    return isinstance(value, type) and issubclass(value, BaseException)


def bare_raises(sources: dict[str, str]) -> list[str]:
    """Where ``ExchangeError`` itself is raised or made: ``path:line`` each."""
    found = []
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            target = None
            if isinstance(node, ast.Call):
                target = node.func
            elif isinstance(node, ast.Raise):
                target = node.exc
            if target is not None and _base_name(target) == "ExchangeError":
                found.append(f"{path}:{node.lineno}")
    return sorted(set(found))


# --- the tree as the code has it -----------------------------------------------------------


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _subclasses(cls: type[ExchangeError]) -> Iterable[type[ExchangeError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def tree_classes() -> list[type[ExchangeError]]:
    """The root and every class derived from it in the project's packages (not in tests)."""
    return [ExchangeError] + [
        c for c in _subclasses(ExchangeError) if c.__module__.split(".")[0] in PACKAGES
    ]


def _instance(cls: type[ExchangeError]) -> ExchangeError:
    # status_for and error_code look only at the class; no constructor arguments needed.
    return cls.__new__(cls)


# --- the checkers fail on wrong inputs -----------------------------------------------------


def test_the_tree_parser_reads_parents_codes_and_retriable_and_refuses_a_bad_line() -> None:
    drawing = "Root     root_error\n├── A    a_error   retriable\n│   └── B  b_error\n└── C  c\n"
    assert parse_tree(drawing) == {
        "Root": (None, "root_error", False),
        "A": ("Root", "a_error", True),
        "B": ("A", "b_error", False),
        "C": ("Root", "c", False),
    }
    with pytest.raises(AssertionError, match="not a line of the tree"):
        parse_tree("Root  root_error\n├── A\n")
    with pytest.raises(AssertionError, match="drawn twice"):
        parse_tree("Root  root_error\n├── A  a\n└── A  b\n")


def test_the_doc_parser_finds_each_listed_code_and_refuses_a_row_without_one() -> None:
    markdown = (
        "| Class | `code` | when |\n|---|---|---|\n| `AError` | `a_error` | x |\n\n"
        "| class | code | error_code |\n|---|---|---|\n| `BError` | `b_error` | 1 |\n\n"
        "| Class | HTTP status |\n|---|---|\n| `AError` | 400 |\n"
    )
    assert documented_codes(markdown) == {"AError": "a_error", "BError": "b_error"}
    with pytest.raises(AssertionError, match="without a `code`"):
        documented_codes("| Class | `code` |\n|---|---|\n| `CError` | c_error |\n")


def test_the_class_scan_finds_exceptions_however_they_derive() -> None:
    sources = {
        "a.py": "class Mine(ValueError):\n    pass\nclass Plain:\n    pass\n",
        "b.py": "import a\nclass Sub(a.Mine): ...\ndef f():\n    class Inner(Exception): ...\n",
    }
    assert exception_classes(sources) == {"Mine": ["a.py"], "Sub": ["b.py"], "Inner": ["b.py"]}


def test_the_raise_scan_finds_the_root_raised_or_made() -> None:
    sources = {
        "a.py": "from x import ExchangeError, ConfigError\nraise ConfigError('fine')\n",
        "b.py": "import errors\ndef f():\n    raise errors.ExchangeError('bare')\n",
        "c.py": "err = ExchangeError('made')\nraise ExchangeError\n",
    }
    assert bare_raises(sources) == ["b.py:3", "c.py:1", "c.py:2"]


# --- the project keeps to them ---------------------------------------------------------------


def test_every_exception_class_of_the_packages_is_defined_in_the_errors_module() -> None:
    found = exception_classes(_sources())
    elsewhere = {n: p for n, p in found.items() if p != ["exchange/core/errors.py"]}
    assert not elsewhere, f"exception classes outside exchange/core/errors.py: {elsewhere}"
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert set(found) == defined
    assert {c.__name__ for c in tree_classes()} == defined  # all of them in the tree


def test_every_class_declares_a_code_of_its_own_and_the_codes_are_unique() -> None:
    classes = tree_classes()
    lacking = [c.__name__ for c in classes if "code" not in vars(c)]
    assert not lacking, f"classes inheriting their parent's code: {lacking}"
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in codes)


def test_the_docstring_draws_the_tree_as_the_classes_are() -> None:
    assert errors.__doc__ is not None
    drawn = parse_tree(docstring_tree(errors.__doc__))
    actual = {
        c.__name__: (
            None if c is ExchangeError else c.__mro__[1].__name__,
            c.code,
            c.retriable,
        )
        for c in tree_classes()
    }
    assert drawn == actual


def test_docs_errors_md_shows_the_same_tree() -> None:
    assert errors.__doc__ is not None
    assert doc_tree(DOC.read_text(encoding="utf-8")) == docstring_tree(errors.__doc__)


def test_docs_errors_md_lists_every_code_and_no_other() -> None:
    documented = documented_codes(DOC.read_text(encoding="utf-8"))
    actual = {c.__name__: c.code for c in tree_classes()}
    assert sorted(set(actual) - set(documented)) == [], "classes docs/errors.md does not list"
    assert sorted(set(documented) - set(actual)) == [], "docs/errors.md lists unknown classes"
    assert documented == actual


def test_docs_errors_md_states_the_retriable_flag_status_and_error_code_answered() -> None:
    by_name = {c.__name__: c for c in tree_classes()}
    checked = 0
    for header, rows in tables(DOC.read_text(encoding="utf-8")):
        if not header or header[0] != "class":
            continue
        for cells in rows:
            cls = _CLASS_CELL.match(cells[0])
            if cls is None:
                continue  # e.g. "any other, retriable"
            kind = by_name[cls[1]]
            for title, cell in zip(header, cells, strict=True):
                if title == "retriable":
                    assert cell == ("yes" if kind.retriable else "no"), kind.__name__
                elif title in ("http", "http status", "cli / http"):
                    statuses = re.findall(r"\b[1-5]\d\d\b", cell)
                    if statuses:
                        assert int(statuses[-1]) == status_for(_instance(kind)), kind.__name__
                        checked += 1
                elif title == "error_code":
                    status = status_for(_instance(kind))
                    assert int(cell) == confluent.error_code(_instance(kind), status), cell
    assert checked >= len(STATUS)


def test_nothing_raises_the_root_itself() -> None:
    assert bare_raises(_sources()) == []


def test_domain_errors_carry_no_http_and_the_gateway_maps_only_tree_classes() -> None:
    for cls in tree_classes():
        assert not HTTP_ATTRIBUTES & set(vars(cls)), cls.__name__
    tree = set(tree_classes())
    assert set(STATUS) <= tree
    assert set(confluent.ERROR_CODES) <= tree
