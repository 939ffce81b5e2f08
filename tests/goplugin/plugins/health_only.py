"""Serves only the gRPC health service (``plugin`` SERVING) on $HEALTH_SOCKET, announces
it and waits: it answers the host's start check but not GRPCController.Shutdown.

With $IGNORE_SIGTERM set it also ignores SIGTERM (only SIGKILL stops it).
"""

import os
import signal
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

if os.environ.get("IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

path = os.environ["HEALTH_SOCKET"]
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
servicer.set("plugin", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port(f"unix:{path}")
server.start()
sys.stdout.write(f"1|1|unix|{path}|grpc|\n")
sys.stdout.flush()
time.sleep(120)
