"""drp models: upstream JSON field names, round trips, validation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from plugwire.core.errors import ProtocolError
from plugwire.http.drp import (
    Action,
    AvailableAction,
    Error,
    Event,
    LogLine,
    PluginProvider,
    ProviderError,
)
from plugwire.http.drp.models import format_time, parse_time


def test_plugin_provider_field_names_are_go_names() -> None:
    pp = PluginProvider(
        name="p",
        version="1.2",
        available_actions=[AvailableAction(command="go", model="machines", required_params=["a"])],
        store_objects={"cows": {}},
        meta={"color": "blue"},
    )
    doc = pp.to_json()
    assert list(doc) == [
        "Meta",
        "Name",
        "Version",
        "PluginVersion",
        "AutoStart",
        "HasPublish",
        "AvailableActions",
        "RequiredParams",
        "OptionalParams",
        "StoreObjects",
        "Documentation",
        "Content",
    ]
    assert list(doc["AvailableActions"][0]) == [
        "Provider",
        "Model",
        "Command",
        "RequiredParams",
        "OptionalParams",
    ]
    assert doc["PluginVersion"] == 4
    assert PluginProvider.from_json(json.loads(json.dumps(doc))) == pp


def test_go_nil_slices_decode() -> None:
    doc = {
        "Name": "incrementer",
        "Version": "v4",
        "PluginVersion": 2,
        "HasPublish": True,
        "AvailableActions": [
            {"Command": "incrstatus", "Model": "", "Provider": "", "RequiredParams": None}
        ],
        "RequiredParams": None,
        "OptionalParams": None,
        "StoreObjects": None,
        "Meta": None,
        "Content": "",
    }
    pp = PluginProvider.from_json(doc)
    assert pp.available_actions[0].required_params == ()
    assert pp.meta == {} and pp.store_objects == {}
    assert pp.find_action("incrstatus") is not None
    assert pp.find_action("incrstatus", "machines") is None


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"Name": 3}, "Name"),
        ({"Name": "x", "PluginVersion": "4"}, "PluginVersion"),
        ({"Name": "x", "AvailableActions": {}}, "AvailableActions"),
        ({"Name": "x", "AvailableActions": [{"Command": 1}]}, "Command"),
        ({"Name": "x", "RequiredParams": ["a", 2]}, "RequiredParams"),
        ({"Name": "x", "Meta": {"a": 1}}, "Meta"),
        ({"Name": "x", "AutoStart": "yes"}, "AutoStart"),
    ],
)
def test_plugin_provider_validation_names_the_field(doc: object, field: str) -> None:
    with pytest.raises(ProtocolError, match=field):
        PluginProvider.from_json(doc)


def test_not_an_object() -> None:
    with pytest.raises(ProtocolError, match="JSON object"):
        PluginProvider.from_json([1, 2])


def test_action_round_trip() -> None:
    action = Action(
        command="increment",
        model={"Uuid": "u-1", "Name": "m"},
        plugin="incr",
        command_set="cs",
        params={"incrementer/step": 2},
    )
    doc = action.to_json()
    assert list(doc) == ["Model", "Plugin", "Command", "CommandSet", "Params"]
    assert Action.from_json(doc) == action
    assert Action.from_json({"Command": "x", "Params": None}).params == {}


def test_error_messages_null_when_empty_like_go() -> None:
    assert Error(code=200).to_json() == {
        "Model": "",
        "Key": "",
        "Type": "",
        "Messages": None,
        "Code": 200,
    }
    e = Error(code=404, messages=["nope"], model="plugin", key="k", type="plugin")
    assert Error.from_json(e.to_json()) == e
    assert e.describe() == "plugin: plugin/k: nope"
    assert Error(code=0).with_code().code == 500
    assert Error(code=409).with_code().code == 409


def test_provider_error_never_has_code_zero() -> None:
    exc = ProviderError("bad", code=0)
    assert exc.code == 500
    assert exc.error.messages == ("bad",)
    nested = json.loads(exc.nested_messages()[0])
    assert nested["Code"] == 500 and nested["Messages"] == ["bad"]


def test_event_and_times() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=dt.UTC)
    ev = Event(type="machines", action="update", key="u-1", object={"a": 1}, time=when)
    doc = ev.to_json()
    assert doc["Time"] == "2024-05-06T07:08:09.12Z"
    assert list(doc) == ["Time", "Type", "Action", "Key", "Principal", "Object", "Original"]
    assert Event.from_json(doc) == ev
    # Go writes nanoseconds and offsets
    assert parse_time("2024-05-06T07:08:09.123456789+02:00") == dt.datetime(
        2024, 5, 6, 5, 8, 9, 123456, tzinfo=dt.UTC
    )
    assert format_time(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) == "2024-01-01T00:00:00Z"
    with pytest.raises(ProtocolError, match="RFC 3339"):
        parse_time("yesterday")


def test_log_line() -> None:
    line = LogLine(message="hi", level="warn", service="incr", line=3, data=[1, "a"])
    doc = line.to_json()
    assert list(doc) == [
        "Group",
        "Seq",
        "Time",
        "Service",
        "Principal",
        "Level",
        "File",
        "Line",
        "Message",
        "Data",
        "IgnorePublish",
    ]
    assert doc["Level"] == "warn"
    assert LogLine.from_json(doc) == line
    assert LogLine.from_json({"Message": "x", "Level": 4}).level == "error"
    assert LogLine.from_json({"Message": "x", "Level": "ERR"}).level == "error"
    with pytest.raises(ProtocolError, match="log level"):
        LogLine.from_json({"Message": "x", "Level": "loud"})
    with pytest.raises(ProtocolError):
        LogLine.from_json({"Message": "x", "Data": "notalist"})


def test_format_time_keeps_offsets() -> None:
    when = dt.datetime(2025, 2, 3, 4, 5, 6, 789000, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert format_time(when) == "2025-02-03T04:05:06.789-05:00"
    assert parse_time(format_time(when)) == when
