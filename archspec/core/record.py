"""Named tuples that compile nothing when their module is imported (`class Row(Record)`)."""

# To a type checker `Record` is typing.NamedTuple. At run time it makes the same classes the
# way collections.namedtuple does, less its per-class cost (~0.1 ms of a start for each of
# archspec's 43; docs/table.md, Speed): namedtuple compiles each class's `__new__` from
# source and writes its own `_make`, `_replace` and `__repr__` for it, and typing checks every
# annotation. Here `__new__` is compiled once for each number of fields and renamed for each
# class (its parameters are the fields, so a record is built by keyword as by position), the
# other methods are shared, and annotations are only read for the fields' names and order.

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Record"]

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    from collections import _tuplegetter  # namedtuple's field getter (C)
    from types import CodeType, FunctionType
    from typing import Any

    _GLOBALS = {"_tuple_new": tuple.__new__, "__builtins__": {}}
    _new_codes: dict[int, CodeType] = {}

    def _new_code(arity: int) -> CodeType:
        """The code of a `__new__` taking `arity` values (named `_0`, `_1`, ...)."""
        code = _new_codes.get(arity)
        if code is None:
            names = [f"_{i}" for i in range(arity)]
            values = "".join(f"{name}, " for name in names)
            made = eval(f"lambda _cls, {', '.join(names)}: _tuple_new(_cls, ({values}))",
                        _GLOBALS)
            code = _new_codes[arity] = made.__code__
        return code

    # what typing.NamedTuple refuses to take from a class body (a record's own __new__, say)
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})

    class _Tuple(tuple):
        """What every record shares: namedtuple's methods, written once."""

        __slots__ = ()
        _fields = ()  # not annotated: typing.get_type_hints(record) would list it as a field

        @classmethod
        def _make(cls, iterable: Any) -> Any:
            made = tuple.__new__(cls, iterable)
            if len(made) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
            return made

        def _replace(self, /, **changes: Any) -> Any:
            made = self._make(map(changes.pop, self._fields, self))
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return made

        def _asdict(self) -> dict[str, Any]:
            return dict(zip(self._fields, self, strict=True))

        def __repr__(self) -> str:
            values = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self,
                                                                          strict=True))
            return f"{type(self).__name__}({values})"

        def __getnewargs__(self) -> tuple[Any, ...]:
            return tuple(self)

    class _RecordType(type):
        """Makes the class of each `class Name(Record)` statement: a tuple of the fields it
        annotates, in their order, those given a value defaulting to it (as NamedTuple's)."""

        def __new__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
            if bases != (Record,):  # typing.NamedTuple's refuses other bases (Generic aside)
                raise TypeError(f"{name}: a record derives from Record alone, not {bases}")
            for key in _PROHIBITED.intersection(namespace):
                raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
            annotations = namespace.get("__annotations__", {})
            fields = tuple(annotations)
            defaults = []
            for field in fields:
                if field.startswith("_"):
                    raise ValueError(f"{name}: a field name cannot start with '_': {field!r}")
                if field in namespace:
                    defaults.append(namespace[field])
                elif defaults:
                    raise TypeError(f"{name}: field {field!r} without a default follows one "
                                    "with a default")
            arguments = f"{name}({', '.join(fields)}{',' if len(fields) == 1 else ''})"
            new = FunctionType(_new_code(len(fields)).replace(
                co_varnames=("_cls", *fields), co_name="__new__",
                co_qualname=f"{name}.__new__"), _GLOBALS, "__new__", tuple(defaults) or None)
            new.__doc__ = f"Create new instance of {arguments}"  # as namedtuple's, for help()
            new.__annotations__ = annotations  # typing's: inspect.signature shows the types
            namespace.setdefault("__doc__", arguments)
            namespace.update({field: _tuplegetter(index, f"Alias for field number {index}")
                              for index, field in enumerate(fields)})
            namespace.update(__slots__=(), __new__=new, __match_args__=fields, _fields=fields,
                             _field_defaults=dict(zip(fields[len(fields) - len(defaults):],
                                                      defaults, strict=True)))
            # its class is `type`: a class derived from a record is a plain class, as there
            return type.__new__(type, name, (_Tuple,), namespace)

    Record = type.__new__(_RecordType, "Record", (), {"__module__": __name__})
