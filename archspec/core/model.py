"""Frozen: the base of every archspec model, built from trusted data without pydantic's loop."""

from __future__ import annotations

from types import NoneType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

# Defaults pydantic hands out as they are (its smart_deepcopy copies no immutable value), so
# an instance may share them.
_IMMUTABLE = (NoneType, bool, int, float, str, tuple, frozenset)


class Frozen(BaseModel):
    """The base of every archspec model: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @classmethod
    def model_construct(  # type: ignore[override]  # the plugin types each class's fields
            cls, _fields_set: set[str] | None = None, **values: Any) -> Self:
        """pydantic's model_construct (no validation: for what archspec built itself), the
        same instance at a fifth of its cost: pydantic's loop looks up aliases for each field
        of each instance (~10 µs a 20-field table row, seconds at 100k layers). Here the
        fields are set in their declared order, a left-out field takes its immutable default,
        and the set of given names is shared by the instances given the same names (pydantic
        makes a 2.2 KB set per instance: more than half of a table row). Frozen: that set is
        never added to (model_copy copies it). Anything else (an explicit `_fields_set`, an
        unknown name, a left-out field without an immutable default) goes to pydantic's."""
        layout = _LAYOUTS[cls] if cls in _LAYOUTS else _layout(cls)
        if _fields_set is not None or layout is None or not values.keys() <= layout.names:
            return super().model_construct(_fields_set, **values)
        if len(values) == len(layout.order):
            # pydantic's order: kept when the caller gave it (a comparison, not a new dict)
            data = values if list(values) == layout.listed else {
                name: values[name] for name in layout.order}
            given = layout.names
        else:
            defaults = layout.defaults
            try:
                data = {name: values[name] if name in values else defaults[name]
                        for name in layout.order}
            except KeyError:  # a required field left out, or a default made by a factory
                return super().model_construct(None, **values)
            key = (cls, *values)
            given = _GIVEN.get(key) or _GIVEN.setdefault(key, set(values))
        model = cls.__new__(cls)
        _set(model, "__dict__", data)
        _set(model, "__pydantic_fields_set__", given)
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


class _Layout:
    """A class's fields in order, their names, and the defaults an instance may share."""

    __slots__ = ("defaults", "listed", "names", "order")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.order = tuple(fields)
        self.listed = list(fields)
        self.names = set(fields)
        self.defaults = {name: field.default for name, field in fields.items()
                         if not field.is_required() and field.default_factory is None
                         and type(field.default) in _IMMUTABLE}


def _layout(cls: type[Frozen]) -> _Layout | None:
    """The class's layout, or None where pydantic's model_construct must run (a post-init
    hook or private attributes, which the fast path would skip)."""
    fields = cls.__pydantic_fields__
    plain = not cls.__pydantic_post_init__ and not cls.__private_attributes__ and not any(
        field.alias or field.validation_alias for field in fields.values())
    layout = _Layout(fields) if plain else None
    _LAYOUTS[cls] = layout
    return layout


_LAYOUTS: dict[type[Frozen], _Layout | None] = {}
_GIVEN: dict[tuple[Any, ...], set[str]] = {}
_set = object.__setattr__
