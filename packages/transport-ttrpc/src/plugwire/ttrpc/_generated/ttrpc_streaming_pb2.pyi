from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EchoPayload(_message.Message):
    __slots__ = ("seq", "msg")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    seq: int
    msg: str
    def __init__(self, seq: _Optional[int] = ..., msg: _Optional[str] = ...) -> None: ...

class Part(_message.Message):
    __slots__ = ("add",)
    ADD_FIELD_NUMBER: _ClassVar[int]
    add: int
    def __init__(self, add: _Optional[int] = ...) -> None: ...

class Sum(_message.Message):
    __slots__ = ("sum", "num")
    SUM_FIELD_NUMBER: _ClassVar[int]
    NUM_FIELD_NUMBER: _ClassVar[int]
    sum: int
    num: int
    def __init__(self, sum: _Optional[int] = ..., num: _Optional[int] = ...) -> None: ...
