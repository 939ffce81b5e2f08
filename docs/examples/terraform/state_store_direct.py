import asyncio
import tempfile

from plugwire.grpc.terraform import Context, LockHeld, LockInfo
from plugwire.grpc.terraform.examples.fsstate import provider


async def main() -> None:
    p = provider()
    store = p.state_stores["fsstate_dir"]
    ctx = Context(provider=p, type_name="fsstate_dir")
    with tempfile.TemporaryDirectory() as d:
        await store.configure({"path": d, "chunk_size": None}, ctx)
        await store.write("default", b'{"version": 4}', ctx)
        assert await store.read("default", ctx) == b'{"version": 4}'
        lock_id = await store.lock("default", LockInfo.new("OperationTypeApply"), ctx)
        try:
            await store.lock("default", LockInfo.new("OperationTypePlan"), ctx)
        except LockHeld as exc:
            assert exc.held.id == lock_id
            print(exc.diagnostic.summary, "-", exc.held.operation)
        await store.unlock("default", lock_id, ctx)
        print(await store.states(ctx))


asyncio.run(main())
