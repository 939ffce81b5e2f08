"""dr-provision models as attrs values, serialised with upstream's JSON field names.

The Go types (``github.com/digitalrebar/provision/v4/models`` and
``github.com/digitalrebar/logger``) carry no json tags, so their JSON field names
are the Go field names: ``Name``, ``AvailableActions``, ``RequiredParams``...
Each class here has ``to_json()`` (a dict ready for ``json.dumps``) and
``from_json(doc)`` which validates types and raises
:class:`~plugwire.core.errors.ProtocolError` naming the field that is wrong.

Empty lists are written as ``[]``, except ``Error.Messages`` which is written as
``null`` when empty, as Go writes a nil slice (the bodies plugwire sends then equal
the ones the Go library sends).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs

from plugwire.core.errors import ProtocolError

__all__ = [
    "LOG_LEVELS",
    "Action",
    "AvailableAction",
    "Error",
    "Event",
    "LogLine",
    "PluginProvider",
    "format_time",
    "go_field",
    "go_json_pairs",
    "go_names_match",
    "parse_time",
]

T = TypeVar("T")

#: digitalrebar/logger levels in order (their JSON form is the name).
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal", "panic", "audit")

_ZERO_TIME = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str, *, field: str = "Time") -> _dt.datetime:
    """Parse Go's RFC 3339 (nanosecond) time text into an aware datetime."""
    if not isinstance(text, str):
        raise ProtocolError(f"{field} must be an RFC 3339 string", expected="string", seen=text)
    fixed = text.replace("z", "Z").replace("Z", "+00:00")
    fixed = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), fixed, count=1)
    try:
        value = _dt.datetime.fromisoformat(fixed)
    except ValueError:
        raise ProtocolError(
            f"{field} is not an RFC 3339 time", expected="e.g. 2006-01-02T15:04:05Z", seen=text
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


def format_time(value: _dt.datetime) -> str:
    """Format like Go's ``time.Time`` JSON (RFC 3339, trailing zeros dropped)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    text = value.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    match = _FRACTION.search(text)
    if match:
        digits = match.group(1).rstrip("0")
        text = text[: match.start()] + ("." + digits if digits else "") + text[match.end() :]
    return text


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _fold_char(c: str) -> tuple[str, ...]:
    lower, upper = c.lower(), c.upper()
    return tuple(x for x in (c, lower, upper) if len(x) == 1)


def go_names_match(key: str, name: str) -> bool:
    """Whether a JSON object key selects the Go struct field ``name``, as
    ``encoding/json`` decides it: the same name, or the same under Unicode simple
    case folding (``command`` and ``COMMAND`` select ``Command``; so does the Kelvin
    sign for a ``K``)."""
    if key == name:
        return True
    if len(key) != len(name):
        return False
    return all(
        a == b or bool(set(_fold_char(a)) & set(_fold_char(b)))
        for a, b in zip(key, name, strict=True)
    )


def go_field(doc: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The value ``encoding/json`` would decode into field ``name`` of a Go struct.

    Go applies the object's keys in order and a later key overwrites an earlier
    one; a key matches the field exactly or case-insensitively; ``null`` leaves the
    field as it was. So: the last non-null value among the matching keys (a document
    decoded with :func:`go_json_pairs` keeps its keys in the order of their last
    occurrence, as Go sees them)."""
    value = default
    for key, candidate in doc.items():
        if candidate is not None and go_names_match(key, name):
            value = candidate
    return value


def go_json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=go_json_pairs)``: a repeated key keeps
    its last value at the position of its last occurrence (Go's order of
    application; see :func:`go_field`)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.pop(key, None)
        out[key] = value
    return out


def _obj(doc: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ProtocolError(f"{what} must be a JSON object", expected="object", seen=doc)
    return doc


def _field(doc: Mapping[str, Any], name: str, kind: type[T], default: T, what: str) -> T:
    value = go_field(doc, name)
    if value is None:
        return default
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind is int and isinstance(value, bool):
        value = None
    if not isinstance(value, kind):
        raise ProtocolError(
            f"{what}.{name} has the wrong type",
            expected=kind.__name__,
            seen=f"{type(value).__name__} {value!r}",
        )
    return value


def _strings(doc: Mapping[str, Any], name: str, what: str) -> tuple[str, ...]:
    value = go_field(doc, name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(
            f"{what}.{name} must be a list of strings", expected="[string]", seen=value
        )
    return tuple(value)


def _dict(doc: Mapping[str, Any], name: str, what: str) -> dict[str, Any]:
    value = go_field(doc, name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{what}.{name} must be an object", expected="object", seen=value)
    return dict(value)


def _tuple_of_str(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


def _tuple_of_any(value: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen
class AvailableAction:
    """``models.AvailableAction``: one action a provider implements.

    ``model`` is the object type it applies to (``machines``...) or empty for a
    system action; the server checks ``required_params`` before calling.
    """

    command: str
    model: str = ""
    provider: str = ""
    required_params: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    optional_params: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)

    def to_json(self) -> dict[str, Any]:
        return {
            "Provider": self.provider,
            "Model": self.model,
            "Command": self.command,
            "RequiredParams": list(self.required_params),
            "OptionalParams": list(self.optional_params),
        }

    @classmethod
    def from_json(cls, doc: Any) -> AvailableAction:
        what = "AvailableAction"
        d = _obj(doc, what)
        return cls(
            command=_field(d, "Command", str, "", what),
            model=_field(d, "Model", str, "", what),
            provider=_field(d, "Provider", str, "", what),
            required_params=_strings(d, "RequiredParams", what),
            optional_params=_strings(d, "OptionalParams", what),
        )


def _actions(value: Sequence[AvailableAction]) -> tuple[AvailableAction, ...]:
    return tuple(value)


@attrs.frozen
class PluginProvider:
    """``models.PluginProvider``: what ``provider define`` prints."""

    name: str
    version: str = ""
    plugin_version: int = 4
    auto_start: bool = False
    has_publish: bool = False
    available_actions: tuple[AvailableAction, ...] = attrs.field(default=(), converter=_actions)
    required_params: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    optional_params: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    store_objects: dict[str, Any] = attrs.field(factory=dict)
    documentation: str = ""
    content: str = ""
    meta: dict[str, str] = attrs.field(factory=dict)

    def find_action(self, command: str, model: str | None = None) -> AvailableAction | None:
        """The declared action named ``command`` (for ``model`` when given)."""
        for action in self.available_actions:
            if action.command == command and (model is None or action.model == model):
                return action
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "Meta": dict(self.meta),
            "Name": self.name,
            "Version": self.version,
            "PluginVersion": self.plugin_version,
            "AutoStart": self.auto_start,
            "HasPublish": self.has_publish,
            "AvailableActions": [a.to_json() for a in self.available_actions],
            "RequiredParams": list(self.required_params),
            "OptionalParams": list(self.optional_params),
            "StoreObjects": dict(self.store_objects),
            "Documentation": self.documentation,
            "Content": self.content,
        }

    @classmethod
    def from_json(cls, doc: Any) -> PluginProvider:
        what = "PluginProvider"
        d = _obj(doc, what)
        actions = go_field(d, "AvailableActions")
        if actions is not None and not isinstance(actions, list):
            raise ProtocolError(
                f"{what}.AvailableActions must be a list",
                expected="[AvailableAction]",
                seen=actions,
            )
        meta = _dict(d, "Meta", what)
        if not all(isinstance(v, str) for v in meta.values()):
            raise ProtocolError(
                f"{what}.Meta values must be strings", expected="{string: string}", seen=meta
            )
        return cls(
            name=_field(d, "Name", str, "", what),
            version=_field(d, "Version", str, "", what),
            plugin_version=_field(d, "PluginVersion", int, 0, what),
            auto_start=_field(d, "AutoStart", bool, False, what),
            has_publish=_field(d, "HasPublish", bool, False, what),
            available_actions=[AvailableAction.from_json(a) for a in actions or []],
            required_params=_strings(d, "RequiredParams", what),
            optional_params=_strings(d, "OptionalParams", what),
            store_objects=_dict(d, "StoreObjects", what),
            documentation=_field(d, "Documentation", str, "", what),
            content=_field(d, "Content", str, "", what),
            meta=meta,
        )


@attrs.frozen
class Action:
    """``models.Action``: what the server POSTs to ``/api-plugin/v4/action``.

    ``model`` is the target object as JSON (a machine...) or None for a system
    action; ``params`` the merged parameters.
    """

    command: str
    model: Any = None
    plugin: str = ""
    command_set: str = ""
    params: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "Model": self.model,
            "Plugin": self.plugin,
            "Command": self.command,
            "CommandSet": self.command_set,
            "Params": dict(self.params),
        }

    @classmethod
    def from_json(cls, doc: Any) -> Action:
        what = "Action"
        d = _obj(doc, what)
        return cls(
            command=_field(d, "Command", str, "", what),
            model=go_field(d, "Model"),
            plugin=_field(d, "Plugin", str, "", what),
            command_set=_field(d, "CommandSet", str, "", what),
            params=_dict(d, "Params", what),
        )


@attrs.frozen
class Event:
    """``models.Event``: ``type.action.key`` plus the object."""

    type: str
    action: str
    key: str = ""
    object: Any = None
    principal: str = ""
    original: Any = None
    time: _dt.datetime = attrs.field(factory=_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "Time": format_time(self.time),
            "Type": self.type,
            "Action": self.action,
            "Key": self.key,
            "Principal": self.principal,
            "Object": self.object,
            "Original": self.original,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Event:
        what = "Event"
        d = _obj(doc, what)
        raw_time = go_field(d, "Time")
        return cls(
            type=_field(d, "Type", str, "", what),
            action=_field(d, "Action", str, "", what),
            key=_field(d, "Key", str, "", what),
            object=go_field(d, "Object"),
            principal=_field(d, "Principal", str, "", what),
            original=go_field(d, "Original"),
            time=_ZERO_TIME if raw_time is None else parse_time(raw_time, field="Event.Time"),
        )


@attrs.frozen
class Error:
    """``models.Error``: the error body of every dr-provision plugin reply.

    ``code`` is also the HTTP status of the reply; plugwire never sends a zero code
    (:meth:`with_code` fixes one up).
    """

    code: int
    messages: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    model: str = ""
    key: str = ""
    type: str = ""

    def with_code(self, default: int = 500) -> Error:
        """This error with ``code`` replaced by ``default`` when it is not a valid
        HTTP error status."""
        if 100 <= self.code <= 999:
            return self
        return attrs.evolve(self, code=default)

    def describe(self) -> str:
        """The text Go's ``(*Error).Error()`` gives."""
        if self.key:
            head = (
                f"{self.type}: {self.model}/{self.key}"
                if self.model
                else f"{self.type}: {self.key}"
            )
        elif self.model:
            head = f"{self.type}: {self.model}"
        else:
            head = self.type
        if not self.messages:
            return head
        if len(self.messages) == 1:
            return f"{head}: {self.messages[0]}"
        return head + "\n  " + "\n  ".join(self.messages)

    def to_json(self) -> dict[str, Any]:
        return {
            "Model": self.model,
            "Key": self.key,
            "Type": self.type,
            "Messages": list(self.messages) if self.messages else None,
            "Code": self.code,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Error:
        what = "Error"
        d = _obj(doc, what)
        return cls(
            code=_field(d, "Code", int, 0, what),
            messages=_strings(d, "Messages", what),
            model=_field(d, "Model", str, "", what),
            key=_field(d, "Key", str, "", what),
            type=_field(d, "Type", str, "", what),
        )


def _level(value: str) -> str:
    low = value.strip().lower()
    if low == "err":
        low = "error"
    if low not in LOG_LEVELS:
        raise ProtocolError("unknown log level", expected=f"one of {list(LOG_LEVELS)}", seen=value)
    return low


@attrs.frozen
class LogLine:
    """``logger.Line`` from github.com/digitalrebar/logger (what ``/log`` carries).

    ``level`` is the level name (``info``); Go marshals ``logger.Level`` as text
    and plugwire also accepts the number on input.
    """

    message: str
    level: str = attrs.field(default="info", converter=_level)
    service: str = ""
    principal: str = ""
    group: int = 0
    seq: int = 0
    file: str = ""
    line: int = 0
    data: tuple[Any, ...] = attrs.field(default=(), converter=_tuple_of_any)
    ignore_publish: bool = False
    time: _dt.datetime = attrs.field(factory=_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "Group": self.group,
            "Seq": self.seq,
            "Time": format_time(self.time),
            "Service": self.service,
            "Principal": self.principal,
            "Level": self.level,
            "File": self.file,
            "Line": self.line,
            "Message": self.message,
            "Data": list(self.data),
            "IgnorePublish": self.ignore_publish,
        }

    @classmethod
    def from_json(cls, doc: Any) -> LogLine:
        what = "Line"
        d = _obj(doc, what)
        raw_level = go_field(d, "Level", "info")
        if isinstance(raw_level, int) and not isinstance(raw_level, bool):
            if not 0 <= raw_level < len(LOG_LEVELS):
                raise ProtocolError("unknown log level", expected="0..7", seen=raw_level)
            raw_level = LOG_LEVELS[raw_level]
        if not isinstance(raw_level, str):
            raise ProtocolError(f"{what}.Level must be a string", expected="string", seen=raw_level)
        data = go_field(d, "Data")
        if data is not None and not isinstance(data, list):
            raise ProtocolError(f"{what}.Data must be a list", expected="list", seen=data)
        raw_time = go_field(d, "Time")
        return cls(
            message=_field(d, "Message", str, "", what),
            level=raw_level,
            service=_field(d, "Service", str, "", what),
            principal=_field(d, "Principal", str, "", what),
            group=_field(d, "Group", int, 0, what),
            seq=_field(d, "Seq", int, 0, what),
            file=_field(d, "File", str, "", what),
            line=_field(d, "Line", int, 0, what),
            data=data or (),
            ignore_publish=_field(d, "IgnorePublish", bool, False, what),
            time=_ZERO_TIME if raw_time is None else parse_time(raw_time, field="Line.Time"),
        )
