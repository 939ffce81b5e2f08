from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ("protocol_version",)
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    def __init__(self, protocol_version: _Optional[int] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("protocol_version", "provider", "config_schema_json")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    provider: str
    config_schema_json: str
    def __init__(self, protocol_version: _Optional[int] = ..., provider: _Optional[str] = ..., config_schema_json: _Optional[str] = ...) -> None: ...

class NewPluginRequest(_message.Message):
    __slots__ = ("name", "config_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    config_json: str
    def __init__(self, name: _Optional[str] = ..., config_json: _Optional[str] = ...) -> None: ...

class NewPluginResponse(_message.Message):
    __slots__ = ("payload_schema_json", "error")
    PAYLOAD_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    payload_schema_json: str
    error: TaskError
    def __init__(self, payload_schema_json: _Optional[str] = ..., error: _Optional[_Union[TaskError, _Mapping]] = ...) -> None: ...

class NewTaskPluginRequest(_message.Message):
    __slots__ = ("task_id", "run_id", "payload_json")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    run_id: int
    payload_json: str
    def __init__(self, task_id: _Optional[str] = ..., run_id: _Optional[int] = ..., payload_json: _Optional[str] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("task_id", "run_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    run_id: int
    def __init__(self, task_id: _Optional[str] = ..., run_id: _Optional[int] = ...) -> None: ...

class ResultSet(_message.Message):
    __slots__ = ("success", "has_exit_code", "exit_code", "aborted", "working_dir")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ABORTED_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    has_exit_code: bool
    exit_code: int
    aborted: bool
    working_dir: str
    def __init__(self, success: _Optional[bool] = ..., has_exit_code: _Optional[bool] = ..., exit_code: _Optional[int] = ..., aborted: _Optional[bool] = ..., working_dir: _Optional[str] = ...) -> None: ...

class StoppedRequest(_message.Message):
    __slots__ = ("task", "result")
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    task: TaskRef
    result: ResultSet
    def __init__(self, task: _Optional[_Union[TaskRef, _Mapping]] = ..., result: _Optional[_Union[ResultSet, _Mapping]] = ...) -> None: ...

class FinishedRequest(_message.Message):
    __slots__ = ("task", "success")
    TASK_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    task: TaskRef
    success: bool
    def __init__(self, task: _Optional[_Union[TaskRef, _Mapping]] = ..., success: _Optional[bool] = ...) -> None: ...

class ExceptionRequest(_message.Message):
    __slots__ = ("task", "reason")
    TASK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task: TaskRef
    reason: str
    def __init__(self, task: _Optional[_Union[TaskRef, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class EnvVar(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class StageResponse(_message.Message):
    __slots__ = ("error", "log", "set_env", "abort_sandbox", "verdict")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    SET_ENV_FIELD_NUMBER: _ClassVar[int]
    ABORT_SANDBOX_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    error: TaskError
    log: _containers.RepeatedScalarFieldContainer[str]
    set_env: _containers.RepeatedCompositeFieldContainer[EnvVar]
    abort_sandbox: bool
    verdict: bool
    def __init__(self, error: _Optional[_Union[TaskError, _Mapping]] = ..., log: _Optional[_Iterable[str]] = ..., set_env: _Optional[_Iterable[_Union[EnvVar, _Mapping]]] = ..., abort_sandbox: _Optional[bool] = ..., verdict: _Optional[bool] = ...) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("kind", "messages", "type")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[TaskError.Kind]
        MALFORMED_PAYLOAD: _ClassVar[TaskError.Kind]
        NON_FATAL: _ClassVar[TaskError.Kind]
        FATAL: _ClassVar[TaskError.Kind]
    KIND_UNSPECIFIED: TaskError.Kind
    MALFORMED_PAYLOAD: TaskError.Kind
    NON_FATAL: TaskError.Kind
    FATAL: TaskError.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    kind: TaskError.Kind
    messages: _containers.RepeatedScalarFieldContainer[str]
    type: str
    def __init__(self, kind: _Optional[_Union[TaskError.Kind, str]] = ..., messages: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ...) -> None: ...
