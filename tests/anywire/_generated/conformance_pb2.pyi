from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Msg(_message.Message):
    __slots__ = ("text", "count", "fail_code", "sleep", "blob", "detail", "fail_after")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FAIL_CODE_FIELD_NUMBER: _ClassVar[int]
    SLEEP_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FAIL_AFTER_FIELD_NUMBER: _ClassVar[int]
    text: str
    count: int
    fail_code: int
    sleep: float
    blob: bytes
    detail: bytes
    fail_after: int
    def __init__(self, text: _Optional[str] = ..., count: _Optional[int] = ..., fail_code: _Optional[int] = ..., sleep: _Optional[float] = ..., blob: _Optional[bytes] = ..., detail: _Optional[bytes] = ..., fail_after: _Optional[int] = ...) -> None: ...
