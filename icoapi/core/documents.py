"""YAML configuration documents: parsing that keeps line numbers, and validation
problems that name the path (``sensors -> 3 -> volt_max``) and the line.

Used by the configuration uploads and by the sensor catalog, so a broken file is
reported the same way wherever it is read. No FastAPI imports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[str | int, ...]

# Expanding aliases can turn a small document into a huge structure ("billion
# laughs"); configuration files are small, so anything bigger is refused.
MAX_NODES = 200_000

# Discriminator tags that pydantic inserts into error locations; they are not
# part of the document's structure and are removed from reported paths.
TAG_PREFIX = "<"


@dataclass(frozen=True)
class Problem:
    """One reason why a document is invalid."""

    loc: Loc
    message: str
    line: int | None = None  # 1-based

    @property
    def path(self) -> str:
        return " -> ".join(str(part) for part in self.loc)

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.loc else self.message
        return f"{text} (line {self.line})" if self.line is not None else text


class DocumentInvalid(Exception):
    """The document parsed but does not satisfy its schema."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(_unique(problems))
        super().__init__("; ".join(str(problem) for problem in self.problems))


class YamlSyntaxError(Exception):
    """The text is not a YAML document we accept. ``line`` is 1-based."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{problem}")


@dataclass
class YamlDocument:
    """A parsed document with its node tree, so problems can be given a line."""

    data: Any
    node: yaml.Node | None
    duplicate_keys: list[Problem] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the deepest node on ``loc`` that exists (1-based)."""
        node = self.node
        if node is None:
            return None
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def locate(self, problems: Iterable[Problem]) -> list[Problem]:
        """The problems with their lines, in document order."""
        located = [
            problem
            if problem.line is not None
            else Problem(problem.loc, problem.message, self.line_of(problem.loc))
            for problem in problems
        ]
        return sorted(located, key=lambda problem: problem.line or 0)


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value  # type: ignore[no-any-return]
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        items: list[yaml.Node] = node.value
        return items[part] if 0 <= part < len(items) else None
    return None


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    # Aliases share node objects, so memoizing by identity counts the size the
    # document would have after expansion without expanding it.
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_NODES + 1  # a cycle (recursive alias) is "too big"
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, memo) + _expanded_size(value, memo)
            if size > MAX_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > MAX_NODES:
                break
    memo[id(node)] = size
    return size


def _duplicate_keys(node: yaml.Node, loc: Loc, seen: set[int]) -> list[Problem]:
    # PyYAML silently keeps the last of two equal keys; in a configuration file
    # that is almost always a mistake (e.g. a channel listed twice).
    if id(node) in seen:
        return []
    seen.add(id(node))
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name != "<<":
                if name in keys:
                    problems.append(Problem((*loc, name), "duplicate key", key.start_mark.line + 1))
                keys.add(name)
            problems.extend(_duplicate_keys(value, (*loc, name if name is not None else "?"), seen))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, (*loc, index), seen))
    return problems


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document with PyYAML's safe loader.

    :raises YamlSyntaxError: invalid YAML, several documents, unsafe tags, or a
        document that would expand to more than ``MAX_NODES`` nodes.
    """
    try:
        # The reader already refuses characters YAML does not allow (control codes).
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as error:
        raise YamlSyntaxError("the file contains characters YAML does not allow") from error
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(data=None, node=None)
        if _expanded_size(node, {}) > MAX_NODES:
            raise YamlSyntaxError("document is too large or uses recursive aliases")
        duplicates = _duplicate_keys(node, (), set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        # Only the problem text and position: the snippet would echo file
        # content, which may hold a password.
        mark = error.problem_mark or error.context_mark
        raise YamlSyntaxError(
            error.problem or error.context or "invalid YAML",
            mark.line + 1 if mark is not None else None,
            mark.column + 1 if mark is not None else None,
        ) from error
    except yaml.YAMLError as error:
        raise YamlSyntaxError(type(error).__name__) from error
    except RecursionError as error:
        raise YamlSyntaxError("document is nested too deeply") from error
    finally:
        loader.dispose()
    return YamlDocument(data=data, node=node, duplicate_keys=duplicates)


def decode_yaml_bytes(payload: bytes) -> str:
    """UTF-8 (a BOM is allowed). :raises YamlSyntaxError: not UTF-8."""
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise YamlSyntaxError("the file is not UTF-8 encoded text") from error


_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown key",
    "string_type": "expected non-empty string",
    "string_too_short": "expected non-empty string",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected mapping",
    "model_type": "expected mapping",
    "model_attributes_type": "expected mapping",
    "list_type": "expected list",
}


def problems_from_validation_error(error: ValidationError, prefix: Loc = ()) -> list[Problem]:
    """Readable problems, one per pydantic error, with document paths."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc: Loc = tuple(
            part
            for part in item["loc"]
            if not (isinstance(part, str) and part.startswith(TAG_PREFIX))
        )
        kind = item["type"]
        message = _MESSAGES.get(kind, item["msg"])
        if kind == "too_short":
            message = "expected at least one entry"
        elif kind == "literal_error":
            message = f"expected {item.get('ctx', {}).get('expected', 'another value')}"
        elif kind == "value_error":
            message = item["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            message = f"invalid key: {message}"
        full = (*prefix, *loc)
        if not full and kind in ("model_type", "dict_type", "model_attributes_type"):
            message = "Root document must be a mapping"
        problems.append(Problem(full, message))
    return problems


def _unique(problems: Iterable[Problem]) -> Iterable[Problem]:
    seen: set[tuple[Loc, str]] = set()
    for problem in problems:
        key = (problem.loc, problem.message)
        if key not in seen:
            seen.add(key)
            yield problem
