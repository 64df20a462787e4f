"""Strict checking of one configuration value against a dataclass field: its type and its range.

The same rules serve the configuration sections (declared with :func:`option`) and the detector
settings (declared with :func:`heimdal_tui.detect.model.setting`): the field's annotation gives the
type, its metadata the range (``min``/``max`` inclusive, ``above`` exclusive) and the help line.
Types are strict the way TOML is: ``true`` is not an integer, ``"5"`` is not a number; an integer is
accepted where a float is expected (and stored as a float).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

from heimdal_tui.config.errors import ConfigIssue

# A check on a (string) value or list item beyond its type: the problem in words, or None.
ItemCheck = Callable[[Any], str | None]


def option(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    nonempty: bool = False,
    min_items: int | None = None,
    item_check: ItemCheck | None = None,
    help: str = "",
) -> Any:
    """A configuration field with its allowed values and a line of help.

    ``above`` is an exclusive lower bound (``learning_period`` must be > 0); ``nonempty`` refuses
    empty strings (leave the key out instead); ``item_check`` validates each string of a list (or the
    string itself).
    """
    return dataclasses.field(
        default=default,
        metadata={
            "min": minimum,
            "max": maximum,
            "above": above,
            "nonempty": nonempty,
            "min_items": min_items,
            "item_check": item_check,
            "help": help,
        },
    )


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """The shape a value must have: ``kind`` is bool, int, float, str, path, literal or seq."""

    kind: str
    optional: bool = False
    item: TypeSpec | None = None  # for seq
    container: type = tuple  # for seq: what the checked value is turned into
    choices: tuple[Any, ...] = ()  # for literal

    def describe(self) -> str:
        if self.kind == "seq":
            assert self.item is not None
            return f"a list of {_PLURAL[self.item.kind]}"
        if self.kind == "literal":
            return "one of " + ", ".join(show(c) for c in self.choices)
        return _EXPECTED[self.kind]


_EXPECTED = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "path": "a path (a string)",
}
_PLURAL = {
    "bool": "booleans",
    "int": "integers",
    "float": "numbers",
    "str": "strings",
    "path": "paths",
    "literal": "choices",
    "seq": "lists",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: TypeSpec
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    nonempty: bool = False
    min_items: int | None = None
    item_check: ItemCheck | None = None
    help: str = ""

    def describe_range(self) -> str:
        """The allowed range in words ('between 10 and 65535'), or '' when there is none."""
        low = self.minimum
        if self.above is not None:
            if self.maximum is not None:
                return f"greater than {_num(self.above)} and at most {_num(self.maximum)}"
            return f"greater than {_num(self.above)}"
        if low is not None and self.maximum is not None:
            return f"between {_num(low)} and {_num(self.maximum)}"
        if low is not None:
            return f"at least {_num(low)}"
        if self.maximum is not None:
            return f"at most {_num(self.maximum)}"
        return ""


_SPECS: dict[type, dict[str, FieldSpec]] = {}


def field_specs(cls: type) -> dict[str, FieldSpec]:
    """Every field of dataclass ``cls``, by name, in declaration order (cached).

    Raises TypeError for a field whose type is not one configuration can hold, or that has no
    default: such a class cannot be configured from a file.
    """
    cached = _SPECS.get(cls)
    if cached is not None:
        return cached
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    specs: dict[str, FieldSpec] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no default")
        meta: Mapping[str, Any] = f.metadata
        specs[f.name] = FieldSpec(
            name=f.name,
            type=type_spec(hints[f.name], where=f"{cls.__name__}.{f.name}"),
            default=default,
            minimum=meta.get("min"),
            maximum=meta.get("max"),
            above=meta.get("above"),
            nonempty=bool(meta.get("nonempty", False)),
            min_items=meta.get("min_items"),
            item_check=meta.get("item_check"),
            help=str(meta.get("help", "")),
        )
    _SPECS[cls] = specs
    return specs


def type_spec(tp: Any, *, where: str) -> TypeSpec:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{where}: unsupported type {tp!r} (only X | None unions)")
        return dataclasses.replace(type_spec(args[0], where=where), optional=True)
    if origin is Literal:
        choices = typing.get_args(tp)
        if not all(isinstance(c, str | int | float) for c in choices):
            raise TypeError(f"{where}: unsupported literal {tp!r}")
        return TypeSpec("literal", choices=choices)
    if origin in (tuple, list):
        item_args = typing.get_args(tp)
        if origin is tuple and not (len(item_args) == 2 and item_args[1] is Ellipsis):
            raise TypeError(f"{where}: only tuple[X, ...] is supported, not {tp!r}")
        item = type_spec(item_args[0], where=where)
        if item.optional or item.kind == "seq":
            raise TypeError(f"{where}: unsupported item type in {tp!r}")
        return TypeSpec("seq", item=item, container=origin)
    if tp is bool:
        return TypeSpec("bool")
    if tp is int:
        return TypeSpec("int")
    if tp is float:
        return TypeSpec("float")
    if tp is str:
        return TypeSpec("str")
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return TypeSpec("path")
    raise TypeError(f"{where}: unsupported type {tp!r}")


def check_value(key: str, value: Any, spec: FieldSpec) -> tuple[Any, list[ConfigIssue]]:
    """``value`` converted to the field's type (tuples for lists, Paths, floats), and its problems.

    When there are problems the converted value is meaningless.
    """
    tp = spec.type
    if value is None:
        if tp.optional:
            return None, []
        return None, [ConfigIssue(key, f"expected {tp.describe()}, got nothing")]
    if tp.kind == "seq":
        assert tp.item is not None
        if not isinstance(value, list | tuple):
            return None, [ConfigIssue(key, f"expected {tp.describe()}, got {show(value)}")]
        issues: list[ConfigIssue] = []
        if spec.min_items is not None and len(value) < spec.min_items:
            plural = "s" if spec.min_items != 1 else ""
            issues.append(
                ConfigIssue(key, f"must list at least {spec.min_items} item{plural}, got {len(value)}")
            )
        items = []
        for index, item in enumerate(value):
            converted, problems = _check_scalar(f"{key}[{index}]", item, tp.item, spec)
            items.append(converted)
            issues.extend(problems)
        return tp.container(items), issues
    return _check_scalar(key, value, tp, spec)


def _check_scalar(key: str, value: Any, tp: TypeSpec, spec: FieldSpec) -> tuple[Any, list[ConfigIssue]]:
    def wrong() -> tuple[Any, list[ConfigIssue]]:
        return None, [ConfigIssue(key, f"expected {tp.describe()}, got {show(value)}")]

    kind = tp.kind
    if kind == "bool":
        return (value, []) if isinstance(value, bool) else wrong()
    if kind == "literal":
        # 1 == True in Python: compare types as well as values.
        if any(type(value) is type(c) and value == c for c in tp.choices):
            return value, []
        return None, [ConfigIssue(key, f"must be {tp.describe()}, got {show(value)}")]
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return wrong()
        if kind == "int" and not isinstance(value, int):
            return wrong()
        number: int | float = float(value) if kind == "float" else value
        if isinstance(number, float) and not math.isfinite(number):
            return None, [ConfigIssue(key, f"must be a finite number, got {show(value)}")]
        return number, _range_issues(key, number, value, spec)
    if kind in ("str", "path"):
        if kind == "path" and isinstance(value, PurePath):
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            return wrong()
        if spec.nonempty and not text.strip():
            return None, [ConfigIssue(key, "must not be empty (leave the key out instead)")]
        if spec.item_check is not None:
            problem = spec.item_check(text)
            if problem:
                return None, [ConfigIssue(key, problem)]
        return (Path(text) if kind == "path" else text), []
    raise AssertionError(kind)


def _range_issues(key: str, number: float, written: Any, spec: FieldSpec) -> list[ConfigIssue]:
    low_ok = spec.minimum is None or number >= spec.minimum
    above_ok = spec.above is None or number > spec.above
    high_ok = spec.maximum is None or number <= spec.maximum
    if low_ok and above_ok and high_ok:
        return []
    return [ConfigIssue(key, f"must be {spec.describe_range()}, got {show(written)}")]


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def show(value: Any) -> str:
    """A value as the operator wrote it (TOML-ish): strings quoted, booleans lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, PurePath):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v) for v in value) + "]"
        return f"a list {text if len(text) <= 60 else text[:57] + '...]'}"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return f"a date/time {value.isoformat()}"
    return repr(value)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(prefix: str, key: str) -> str:
    """``prefix.key`` with the key quoted the TOML way when it is not a bare key."""
    part = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    return f"{prefix}.{part}" if prefix else part
