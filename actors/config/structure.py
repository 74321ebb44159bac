"""TOML document -> ``Config`` with cattrs, every problem on one line naming its key path.

Types first (``forbid_extra_keys``; an int is not a bool; a float is finite unless it is a ``Limit``), then
each key's rule (validators are run one by one, so every problem is listed, not only the first).
"""

from __future__ import annotations

import enum
import math
import typing
from typing import Any, Callable, Literal

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from actors.config.sections import Aliases, Config, PairsSetting, aliases_table, one_line, pairs_setting
from actors.core.rules import Limit, positive_or_inf


class _Mismatch(TypeError):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _strict(check: Callable[[Any], bool], expected: str, convert: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if not check(value):
            raise _Mismatch(expected)
        return convert(value)

    return hook


def _number(*, allow_inf: bool, expected: str, expected_finite: str) -> Callable[[Any, Any], float]:
    """Structure hook of float (finite only: every float key, present and future) and of Limit (finite
    or inf; its rule refuses -inf)."""

    def hook(value: Any, _type: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Mismatch(expected)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            raise _Mismatch(expected_finite) from None
        if math.isnan(number) or (math.isinf(number) and not allow_inf):
            raise _Mismatch(expected_finite)
        return number

    return hook


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(
    int, _strict(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", int)
)
_converter.register_structure_hook(
    float, _number(allow_inf=False, expected="a number", expected_finite="a finite number")
)
_converter.register_structure_hook(
    Limit, _number(allow_inf=True, expected=positive_or_inf.expected, expected_finite=positive_or_inf.expected)
)
_converter.register_structure_hook(str, _strict(lambda v: isinstance(v, str), "a string", str))
_converter.register_structure_hook(bool, _strict(lambda v: isinstance(v, bool), "true or false", bool))


def _pairs(value: Any, _type: Any) -> PairsSetting:
    """[market] pairs: "all" or a list of strings (each coin's rule is the field's validator)."""
    if value == "all":
        return "all"
    if isinstance(value, list) and all(isinstance(coin, str) for coin in value):
        return tuple(value)
    raise _Mismatch(pairs_setting.expected)


def _aliases(value: Any, _type: Any) -> Aliases:
    """[market] aliases: a table of strings, held as sorted (Upbit coin, Binance coin) tuples."""
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return tuple(sorted(value.items()))
    raise _Mismatch(aliases_table.expected)


def _strings(value: Any, _type: Any) -> tuple[str, ...]:
    """A list of strings (market.exclude, replay.files): a lone string is not split into its characters, and
    an item that is not a string is named by its index."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _Mismatch("a list of strings")
    errors: list[Exception] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            error = _Mismatch("a string")
            error.__notes__ = [IterableValidationNote(f"Structuring a list @ index {i}", i, str)]
            errors.append(error)
    if errors:
        raise IterableValidationError("While structuring a list of strings", errors, tuple)
    return tuple(value)


_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _strings)
_converter.register_structure_hook_func(lambda t: t == PairsSetting, _pairs)
_converter.register_structure_hook_func(lambda t: t == Aliases, _aliases)
_converter.register_unstructure_hook_func(
    lambda t: t == PairsSetting, lambda v: v if v is None or v == "all" else list(v)
)
_converter.register_unstructure_hook_func(lambda t: t == Aliases, dict)


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _enum_word(value: Any, tp: type[enum.StrEnum]) -> enum.StrEnum:
    """A word of a StrEnum (``FaultKind``, ``Venue``): one of its values, as written, or what it expects.
    (Registered for StrEnum itself: it is more specific than ``str``, whose hook would let any string in.)"""
    if isinstance(value, str) and value in tp._value2member_map_:
        return tp(value)
    raise _Mismatch(_describe(tp))


_converter.register_structure_hook(enum.StrEnum, _enum_word)
_converter.register_unstructure_hook(enum.StrEnum, lambda member: member.value)  # TOML-shaped: the plain word


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        # a member of a StrEnum among the words (fx.source: Venue.UPBIT) as it is written: its value
        return "one of " + ", ".join(repr(a.value if _is_enum(type(a)) else a) for a in typing.get_args(tp))
    if _is_enum(tp):  # a StrEnum's words, as a Literal's would read
        return "one of " + ", ".join(repr(member.value) for member in tp)
    if attrs.has(tp):
        return "a table"
    return {
        int: "an integer",
        float: "a number",
        Limit: positive_or_inf.expected,
        str: "a string",
        bool: "true or false",
    }.get(tp, str(tp))


_MISSING = object()


def _lookup(raw: Any, path: list[str | int]) -> Any:
    for key in path:
        try:
            raw = raw[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw


def _render(path: list[str | int]) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


def _given(raw: Any, path: list[str | int]) -> str:
    value = _lookup(raw, path)
    return "nothing (the key is missing)" if value is _MISSING else repr(value)


def _problems(exc: BaseException, path: list[str | int], tp: Any, raw: Any) -> list[str]:
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        out: list[str] = []
        for sub, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                out += _problems(sub, path + [note.name], note.type, raw)
            elif isinstance(note, IterableValidationNote):
                out += _problems(sub, path + [note.index], note.type, raw)
            else:
                out += _problems(sub, path, tp, raw)
        for sub in without:
            out += _problems(sub, path, tp, raw)
        return out
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(a.name for a in attrs.fields(exc.cl))
        return [
            f"{_render(path + [k])}: unknown key (expected one of: {allowed}), got {_given(raw, path + [k])}"
            for k in sorted(exc.extra_fields)
        ]
    if isinstance(exc, KeyError):
        return [f"{_render(path)}: expected {_describe(tp)}, got nothing (the key is missing)"]
    expected = getattr(exc, "expected", None) or _describe(tp)
    return [f"{_render(path)}: expected {expected}, got {_given(raw, path)}"]


def _check_values(obj: Any, path: list[str | int], raw: Any) -> list[str]:
    out: list[str] = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if attrs.has(type(value)):
            out += _check_values(value, path + [field.name], raw)
        elif field.validator is not None:
            try:
                field.validator(obj, field, value)
            except ValueError as exc:  # a Rule's Invalid, or a validator of supervision's RestartPolicy
                given = _lookup(raw, path + [field.name])
                shown = repr(value) if given is _MISSING else repr(given)
                expected = getattr(exc, "expected", None) or str(exc)
                out.append(f"{_render(path + [field.name])}: expected {expected}, got {shown}")
    return out


def structure(raw: dict[str, Any]) -> tuple[Config | None, list[str]]:
    """The Config and the problems of its keys one by one (types, then each key's rule)."""
    with attrs.validators.disabled():
        try:
            config = _converter.structure(raw, Config)
        except Exception as exc:  # cattrs reports every problem in one exception group
            return None, _problems(exc, [], Config, raw) or [one_line(exc)]
    return config, _check_values(config, [], raw)


def unstructure(config: Config) -> dict[str, Any]:
    """The config as plain tables, the shape ``structure`` reads."""
    document: dict[str, Any] = _converter.unstructure(config)
    return document
