"""Method paths, value conversions and status helpers shared by host and plugin."""

from __future__ import annotations

import asyncio

from google.protobuf import empty_pb2

from plugwire.core.errors import RemoteError, TransportNotAvailableError
from plugwire.core.status import StatusCode

from ._generated import cipd_admission_pb2, cipd_rpc_status_pb2, cipd_types_pb2
from .errors import AdmissionDeniedError
from .pins import ObjectRef

HOST_SERVICE = "cipd.plugin.Host"
ADMISSIONS_SERVICE = "cipd.plugin.Admissions"
LOG = f"/{HOST_SERVICE}/Log"
LIST_METADATA = f"/{HOST_SERVICE}/ListMetadata"
LIST_ADMISSIONS = f"/{ADMISSIONS_SERVICE}/ListAdmissions"
RESOLVE_ADMISSION = f"/{ADMISSIONS_SERVICE}/ResolveAdmission"

#: The admission protocol version this implementation speaks (LUCI's ProtocolVersion).
PROTOCOL_VERSION = 1

EMPTY = empty_pb2.Empty()


def require_asyncio(what: str) -> asyncio.AbstractEventLoop:
    """The running asyncio loop; :class:`TransportNotAvailableError` under trio or no loop."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise TransportNotAvailableError(
            f"{what} needs the asyncio backend: grpc.aio does not run on trio; run it "
            "with anyio.run(..., backend='asyncio') or asyncio.run()",
            step="backend",
            expected="asyncio",
            seen="another event loop or none",
        ) from None


def ref_to_pb(ref: ObjectRef) -> cipd_types_pb2.ObjectRef:
    return cipd_types_pb2.ObjectRef(hash_algo=ref.hash_algo, hex_digest=ref.hex_digest)  # type: ignore[arg-type]


def ref_from_pb(msg: cipd_types_pb2.ObjectRef) -> ObjectRef:
    return ObjectRef(int(msg.hash_algo), msg.hex_digest)


def status_pb(code: int, message: str = "") -> cipd_rpc_status_pb2.Status:
    return cipd_rpc_status_pb2.Status(code=code, message=message)


def error_from_status(
    status: cipd_rpc_status_pb2.Status, *, peer: str | None, step: str
) -> RemoteError | None:
    """``None`` for OK, :class:`AdmissionDeniedError` for FailedPrecondition, else RemoteError."""
    if status.code == StatusCode.OK:
        return None
    details = [d.SerializeToString() for d in status.details]
    cls = AdmissionDeniedError if status.code == StatusCode.FAILED_PRECONDITION else RemoteError
    return cls(status.message, code=status.code, details=details, peer=peer, step=step)


def admission_pb(
    admission_id: str, service_url: str, package: str, ref: ObjectRef
) -> cipd_admission_pb2.Admission:
    return cipd_admission_pb2.Admission(
        admission_id=admission_id, service_url=service_url, package=package, instance=ref_to_pb(ref)
    )
