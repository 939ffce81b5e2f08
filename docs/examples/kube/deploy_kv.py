"""Deploy go-plugin's KV example plugin to Kubernetes, call it, and remove it.

    python docs/examples/kube/deploy_kv.py IMAGE [--kubeconfig PATH] [--namespace NS]

IMAGE runs a KV plugin that speaks go-plugin's gRPC protocol on TCP (magic cookie
``BASIC_PLUGIN=hello``), like tests/interop/kube/cmd/kvplugin. The host reaches it
through the API server's port-forward when it runs outside the cluster, directly
through the Service when it runs inside; the plugin's log lines show up in this
process's logging. The test suite runs this same flow against a real control plane
(tests/kube/test_cluster.py, tests/kube/test_example.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from plugwire.core.handshake import Handshake
from plugwire.kube import KubePlugin, PluginSpec, load_api_client
from plugwire.kube.kv_example import GetRequest, KVStub, PutRequest


async def main(image: str, kubeconfig: str | None, namespace: str, name: str) -> None:
    async with KubePlugin(
        handshake=Handshake("BASIC_PLUGIN", "hello", protocol_versions=(1,)),
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name=name, image=image, labels={"example": "deploy-kv"}),
        namespace=namespace,
        api_client=load_api_client(kubeconfig),
        start_timeout=120.0,
    ) as plugin:
        print(f"plugin {plugin.name} ready in pod {plugin.pod} via {plugin.chosen_access}")
        kv = plugin.dispense("kv_grpc")
        await kv.Put(PutRequest(key="hello", value=b"world"), timeout=10)
        reply = await kv.Get(GetRequest(key="hello"), timeout=10)
        print(f"Get(hello) = {reply.value.decode()}")
    print("Deployment and Service deleted")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--name", default="kv-example")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    asyncio.run(main(args.image, args.kubeconfig, args.namespace, args.name))
