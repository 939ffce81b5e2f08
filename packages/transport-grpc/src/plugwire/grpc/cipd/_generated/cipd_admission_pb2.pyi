from google.protobuf import empty_pb2 as _empty_pb2
from . import cipd_types_pb2 as _cipd_types_pb2
from . import cipd_rpc_status_pb2 as _cipd_rpc_status_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListAdmissionsRequest(_message.Message):
    __slots__ = ("protocol_version", "plugin_version")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    plugin_version: str
    def __init__(self, protocol_version: _Optional[int] = ..., plugin_version: _Optional[str] = ...) -> None: ...

class Admission(_message.Message):
    __slots__ = ("admission_id", "service_url", "package", "instance")
    ADMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_URL_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    admission_id: str
    service_url: str
    package: str
    instance: _cipd_types_pb2.ObjectRef
    def __init__(self, admission_id: _Optional[str] = ..., service_url: _Optional[str] = ..., package: _Optional[str] = ..., instance: _Optional[_Union[_cipd_types_pb2.ObjectRef, _Mapping]] = ...) -> None: ...

class ResolveAdmissionRequest(_message.Message):
    __slots__ = ("admission_id", "status")
    ADMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    admission_id: str
    status: _cipd_rpc_status_pb2.Status
    def __init__(self, admission_id: _Optional[str] = ..., status: _Optional[_Union[_cipd_rpc_status_pb2.Status, _Mapping]] = ...) -> None: ...
