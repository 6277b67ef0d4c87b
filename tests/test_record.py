"""core.record: named tuples that behave as typing.NamedTuple's, made without compiling code."""

from __future__ import annotations

import copy
import inspect
import pickle
import sys
import types
import typing
from collections import namedtuple
from typing import Any, NamedTuple

import pytest

from archspec.core.record import Record


class Point(Record):
    """A point."""

    x: int
    y: int = 2

    @property
    def total(self) -> int:
        return self.x + self.y


Twin = namedtuple("Twin", ["x", "y"], defaults=[2])  # the same fields, made by collections


def test_a_record_is_built_read_and_compared_as_a_named_tuple() -> None:
    point = Point(1)
    assert point == (1, 2) == Twin(1) and hash(point) == hash((1, 2))
    assert Point(x=3, y=4) == Point(3, 4) and (point.x, point.y, point.total) == (1, 2, 3)
    assert isinstance(point, tuple) and list(point) == [1, 2] and point[1] == 2
    assert Point._fields == Twin._fields == ("x", "y") == Point.__match_args__
    assert Point._field_defaults == Twin._field_defaults == {"y": 2}
    assert repr(point) == "Point(x=1, y=2)"
    assert Point.__doc__ == "A point."
    assert point._replace(y=5) == Point(1, 5) and point._asdict() == {"x": 1, "y": 2}
    assert Point._make([7, 8]) == Point(7, 8) and type(Point._make([7, 8])) is Point
    match Point(3, 4):
        case Point(a, b):
            assert (a, b) == (3, 4)
    with pytest.raises(AttributeError):
        point.x = 3  # type: ignore[misc]
    assert not hasattr(point, "__dict__")


class Typed(NamedTuple):  # Point's fields, as typing makes them
    x: int
    y: int = 2


def test_a_record_types_its_fields_as_typing_does() -> None:
    # its fields and nothing else: not _fields, which every record shares
    assert typing.get_type_hints(Point) == typing.get_type_hints(Typed) == {"x": int, "y": int}
    # and its constructor as typing's: documented, the fields' types in its signature
    assert Point.__new__.__doc__ == Typed.__new__.__doc__.replace("Typed", "Point")
    assert str(inspect.signature(Point)) == "(x: 'int', y: 'int' = 2)"
    assert typing.get_type_hints(Point.__new__, globals()) == {"x": int, "y": int}


def test_a_record_without_a_docstring_is_documented_as_a_named_tuple() -> None:
    class One(Record):
        x: int

    class Two(Record):
        x: int
        y: int

    made = namedtuple("One", "x").__doc__, namedtuple("Two", "x y").__doc__
    assert (One.__doc__, Two.__doc__) == made == ("One(x,)", "Two(x, y)")


def test_a_record_refuses_what_a_named_tuple_refuses() -> None:
    # the same messages, naming the class, as the __new__ namedtuple compiles for itself
    for args, kwargs in [((), {}), ((1, 2, 3), {}), ((1,), {"z": 3}), ((1,), {"x": 1})]:
        expected = _error(Twin, args, kwargs)
        assert _error(Point, args, kwargs) == expected.replace("Twin", "Point")
    # and _replace's and _make's, word for word
    for call in (lambda cls: cls(1)._replace(z=1), lambda cls: cls._make([1, 2, 3])):
        assert _refusal(call, Point) == _refusal(call, Twin) != ""


def _refusal(call: Any, cls: Any) -> str:
    try:
        call(cls)
    except (TypeError, ValueError) as refused:
        return f"{type(refused).__name__}: {refused}"
    return ""


def _error(cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    with pytest.raises(TypeError) as raised:
        cls(*args, **kwargs)
    return str(raised.value)


def test_a_record_pickles_copies_and_derives() -> None:
    point = Point(3, 4)
    assert pickle.loads(pickle.dumps(point)) == point
    assert copy.copy(point) == copy.deepcopy(point) == point
    assert type(copy.deepcopy(point)) is Point

    class Named(Point):  # a plain class derived from a record, as from a NamedTuple
        def name(self) -> str:
            return f"p{self.x}"

    assert Named(5).name() == "p5" and Named(5) == (5, 2) and type(Named) is type


def test_fields_are_checked_as_namedtuple_checks_them() -> None:
    with pytest.raises(TypeError, match="field 'y' without a default follows one"):
        class Late(Record):
            x: int = 1
            y: int
    with pytest.raises(ValueError, match="cannot start with '_'"):
        class Hidden(Record):
            _x: int


def test_a_record_refuses_the_class_bodies_typing_refuses() -> None:
    # a base besides Record, or a method the record makes itself, was dropped without a word
    class Mixin:
        def hello(self) -> str:
            return "hello"

    with pytest.raises(TypeError, match="derives from Record alone"):
        class Mixed(Record, Mixin):
            x: int
    for name in ("__new__", "__init__", "_make", "__getnewargs__"):
        body = {"__annotations__": {"x": "int"}, "__module__": __name__, name: print}
        for base in (NamedTuple, Record):
            with pytest.raises(AttributeError, match=f"overwrite NamedTuple attribute {name}"):
                types.new_class("Own", (base,), exec_body=lambda ns, body=body: ns.update(body))


def test_records_compile_one_constructor_for_each_number_of_fields() -> None:
    # What makes them cheap: typing.NamedTuple compiles a __new__ for every class
    # (collections.namedtuple's `eval`); a record only for a number of fields not seen yet.
    compiled: list[object] = []
    listening = [True]  # an audit hook cannot be removed: it stops counting after the test

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "compile" and listening[0]:
            compiled.append(args)

    def record(name: str, count: int) -> Any:
        fields = {f"f{i}": "int" for i in range(count)}
        return types.new_class(name, (Record,), exec_body=lambda namespace: namespace.update(
            __annotations__=fields, __module__=__name__))

    sys.addaudithook(hook)
    try:
        seen = record("Seen", 2)  # two fields, as Point's
        after_seen = len(compiled)
        fresh = record("Fresh", 41)  # more than any of archspec's records
        again = record("Again", 41)
    finally:
        listening[0] = False
    assert after_seen == 0 and len(compiled) == 1
    assert seen(f1="y", f0="x") == ("x", "y") and repr(seen(1, 2)) == "Seen(f0=1, f1=2)"
    assert fresh(*range(41)).f40 == 40 and again(*range(41))._asdict()["f39"] == 39
