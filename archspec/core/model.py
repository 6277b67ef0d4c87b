"""Frozen: the base of every archspec model, built from trusted data without pydantic's loop."""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from types import NoneType, UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Protocol,
    Self,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo
from pydantic.types import Strict

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
        layout = _LAYOUTS.get(cls, _UNSEEN)
        if layout is _UNSEEN:
            layout = _layout(cls)
        if _fields_set is not None or layout is None:
            return super().model_construct(_fields_set, **values)
        if tuple(values) == layout.order:  # the common case: every field, in pydantic's order
            data, given = values, layout.names
        else:
            key = (cls, *values)
            fill = _FILLS[key] if key in _FILLS else _fill(key, layout)
            if fill is None:  # an unknown name, or a left-out field without a shared default
                return super().model_construct(None, **values)
            given, defaults, trailing = fill
            data = {**values, **defaults} if trailing else {
                name: values[name] if name in values else defaults[name]
                for name in layout.order}
        model = _new(cls)
        _set_dict(model, data)
        _set_fields_set(model, given)
        _set_extra(model, None)
        _set_private(model, None)
        return model

    @classmethod
    def validated(cls, **values: Any) -> Self:
        """`cls(**values)`: the same instance, or the same ValidationError, but without
        building pydantic's validator where `vouched` can vouch for the values (building the
        validators of the `train:` section's five models costs ~18 ms, and the first imports
        pydantic's plugin loader: importlib.metadata, ~9 ms more). A value it cannot vouch for
        goes to pydantic's validator, which decides and words the refusal."""
        model = vouched(cls, values)
        return cls(**values) if model is None else model


F = TypeVar("F", bound=Frozen)


def made(cls: type[F], fields: dict[str, Any]) -> F:
    """`cls.model_construct(**fields)` where `fields` holds every field of `cls` in declared
    order, which is not checked: for the loops that make one per token or layer (a span, a
    layer: half model_construct's cost, ~0.1 s at 100k layers). The dict becomes the
    instance's own. tests/test_model.py checks each one a spec's network holds."""
    layout = _LAYOUTS.get(cls, _UNSEEN)
    if layout is _UNSEEN:
        layout = _layout(cls)
    if layout is None:
        return cast(F, cls.model_construct(**fields))  # mypy's pydantic plugin: a Frozen
    model = _new(cls)
    _set_dict(model, fields)
    _set_fields_set(model, layout.names)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def vouched(cls: type[F], values: dict[str, Any]) -> F | None:
    """The instance pydantic's validation makes of `values`, made without its validator, or
    None where a value is not one these rules vouch for. The rules vouch only for inputs whose
    outcome is plain, the same in pydantic's lax and strict modes (a spec's settings are
    strict: ir.Setting): a value of the field's own type within its bounds (an int for a float
    field is converted, as pydantic does in either mode; an instance of a model field is kept);
    every field given, known and not required-and-missing; "before" model validators run as
    pydantic runs them. Anything else (another type, a bound not met, an unknown field, a
    model with other validators) is None: tests/test_model.py checks against pydantic."""
    rules = _RULES[cls] if cls in _RULES else _rules(cls)
    if rules is None:
        return None
    fields, before = rules
    data: Any = values
    for validator in before:
        try:
            data = validator(data)
        except Exception:  # pydantic's own run decides what it means (and raises it)
            return None
    if not isinstance(data, dict) or not data.keys() <= fields.keys() or any(
            name not in data for name in _required(cls)):
        return None
    converted = {}
    for name, value in data.items():
        made = fields[name](value)
        if made is _NO:
            return None
        converted[name] = made
    return cast(F, cls.model_construct(**converted))  # mypy's pydantic plugin: a Frozen


if TYPE_CHECKING:  # a type only: the class would be made at every start
    class NamedFields(Protocol):
        """A named tuple (`core.record`): the report's figures and the findings are not
        models."""

        @property
        def _fields(self) -> tuple[str, ...]: ...


def json_data(model: BaseModel | NamedFields) -> dict[str, Any]:
    """A model's or a named tuple's fields in their order as JSON data (a nested one as its
    own, a tuple as a list): what model_dump(mode="json") gives for archspec's models of
    numbers, text, None and str enums, without building pydantic's serializer for them
    (~18 ms for the report's, and the first imports pydantic's plugin loader)."""
    names = model._fields if not isinstance(model, BaseModel) else type(model).model_fields
    return {name: _json_datum(getattr(model, name)) for name in names}


def _json_datum(value: object) -> object:
    if isinstance(value, BaseModel) or hasattr(value, "_fields"):
        return json_data(cast("BaseModel | NamedFields", value))
    return list(value) if isinstance(value, tuple) else value


_NO: Any = object()  # what a rule returns for a value it does not vouch for
Rule = Callable[[Any], Any]


def _rules(cls: type[Frozen]) -> tuple[dict[str, Rule], list[Callable[[Any], Any]]] | None:
    """The rule of each field and the model's "before" validators, or None where some field's
    annotation is not one `_rule` knows, or the model has a validator of another kind."""
    decorators = cls.__pydantic_decorators__
    found: tuple[dict[str, Rule], list[Callable[[Any], Any]]] | None = None
    if not (decorators.field_validators or decorators.root_validators
            or decorators.validators) and all(
            d.info.mode == "before" and len(inspect.signature(d.func).parameters) == 1
            for d in decorators.model_validators.values()):
        fields = {name: _rule(info.annotation, info.metadata)
                  for name, info in cls.__pydantic_fields__.items()}
        if all(rule is not None for rule in fields.values()):
            found = ({name: rule for name, rule in fields.items() if rule is not None},
                     [d.func for d in decorators.model_validators.values()])
    _RULES[cls] = found
    return found


def _required(cls: type[Frozen]) -> list[str]:
    return [name for name, info in cls.__pydantic_fields__.items() if info.is_required()]


def _rule(annotation: Any, metadata: list[Any]) -> Rule | None:
    """The value pydantic makes of an input for this annotation and these constraints, or
    _NO; None for an annotation or a constraint these rules do not cover."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _rule(args[0], [*metadata, *args[1:]])
    bounds: list[tuple[Callable[[Any, Any], bool], Any]] = []
    pending = list(metadata)  # a FieldInfo inside Annotated brings its own constraints
    while pending:
        item = pending.pop(0)
        if isinstance(item, FieldInfo):
            pending.extend(item.metadata)
        elif isinstance(item, Gt):
            bounds.append((operator.gt, item.gt))
        elif isinstance(item, Ge):
            bounds.append((operator.ge, item.ge))
        elif isinstance(item, Lt):
            bounds.append((operator.lt, item.lt))
        elif isinstance(item, Le):
            bounds.append((operator.le, item.le))
        elif not (isinstance(item, Strict) and annotation is int):  # ints are taken strictly
            return None
    plain = _plain(annotation, origin, args)
    # bounds on a number, or on an optional number's number (pydantic's rule for Optional)
    numbers = {*args} - {NoneType} if origin in (Union, UnionType) and NoneType in args \
        else {annotation}
    if plain is None or (bounds and not (len(numbers) == 1 and numbers <= {int, float})):
        return None
    if not bounds:
        return plain

    def bounded(value: Any) -> Any:
        made = plain(value)
        return made if made is None or (
            made is not _NO and all(holds(made, bound) for holds, bound in bounds)) else _NO

    return bounded


def _plain(annotation: Any, origin: Any, args: tuple[Any, ...]) -> Rule | None:
    """A rule without bounds, for the annotations archspec's models use."""
    if annotation is float:
        # pydantic converts an int, exactly (no int the rules see is beyond 2**53)
        return lambda v: v if type(v) is float else float(v) if type(v) is int and abs(
            v) <= 2**53 else _NO
    if annotation in (int, bool, str):
        return lambda v: v if type(v) is annotation else _NO
    if annotation is NoneType:
        return lambda v: v if v is None else _NO
    if origin is Literal and all(type(arg) is str for arg in args):
        return lambda v: v if type(v) is str and v in args else _NO
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and \
            annotation.model_config.get("revalidate_instances", "never") == "never":
        return lambda v: v if type(v) is annotation else _NO  # kept as it is
    if origin in (Union, UnionType):
        members = [_rule(arg, []) for arg in args]
        if any(member is None for member in members):
            return None
        return lambda v: _one([m(v) for m in members if m is not None])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = _rule(args[0], [])
        return None if items is None else lambda v: _items(v, items)
    if origin is dict and args[0] is str:
        entries = _rule(args[1], [])
        return None if entries is None else lambda v: _entries(v, entries)
    return None


def _one(made: list[Any]) -> Any:
    """A union's value: that of the one member that takes it (none or two: not vouched)."""
    taken = [value for value in made if value is not _NO]
    return taken[0] if len(taken) == 1 else _NO


def _items(value: Any, rule: Rule) -> Any:
    """A tuple of items each made by `rule` (pydantic makes a new tuple)."""
    if type(value) is not tuple:
        return _NO
    made = tuple(rule(item) for item in value)
    return _NO if any(item is _NO for item in made) else made


def _entries(value: Any, rule: Rule) -> Any:
    """A dict with str keys of values each made by `rule` (pydantic makes a new dict)."""
    if type(value) is not dict or any(type(key) is not str for key in value):
        return _NO
    made = {key: rule(item) for key, item in value.items()}
    return _NO if any(item is _NO for item in made.values()) else made


class _Layout:
    """A class's fields in order, their names, and the defaults an instance may share."""

    __slots__ = ("defaults", "names", "order")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.order = tuple(fields)
        self.names = set(fields)
        self.defaults = {name: field.default for name, field in fields.items()
                         if not field.is_required() and field.default_factory is None
                         and type(field.default) in _IMMUTABLE}


def _layout(cls: type[Frozen]) -> _Layout | None:
    """The class's layout, or None where pydantic's model_construct must run (a post-init
    hook, private attributes or a `__new__` of its own, which the fast path would skip)."""
    fields = cls.__pydantic_fields__
    plain = not cls.__pydantic_post_init__ and not cls.__private_attributes__ and not any(
        field.alias or field.validation_alias for field in fields.values()
    ) and cls.__new__ is object.__new__
    layout = _Layout(fields) if plain else None
    _LAYOUTS[cls] = layout
    return layout


def _fill(key: tuple[Any, ...], layout: _Layout) -> _Fill | None:
    """How an instance given the names in `key` (after its class) is completed: the set of
    given names (shared by every such instance), the defaults of the fields left out, and
    whether those fields come last in declared order (the given ones in it); None where a
    name is unknown or a left-out field has no default an instance may share."""
    given = set(key[1:])
    left_out = [name for name in layout.order if name not in given]
    fill = None
    if given <= layout.names and all(name in layout.defaults for name in left_out):
        fill = (given, {name: layout.defaults[name] for name in left_out},
                (*key[1:], *left_out) == layout.order)
    _FILLS[key] = fill
    return fill


_LAYOUTS: dict[type[Frozen], _Layout | None] = {}
_RULES: dict[type[Frozen], tuple[dict[str, Rule], list[Callable[[Any], Any]]] | None] = {}
_UNSEEN = _Layout({})  # a class not laid out yet
# Per class and names given (in their order), how such an instance is completed (`_fill`).
_Fill = tuple[set[str], dict[str, Any], bool]
_FILLS: dict[tuple[Any, ...], _Fill | None] = {}
_new = object.__new__
# The slots of a pydantic instance, set through their descriptors (a frozen model's own
# __setattr__ refuses; object.__setattr__ would look each descriptor up again).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
