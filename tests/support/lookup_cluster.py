"""A Kubernetes API for Helm's ``lookup``: kmock's KubernetesEmulator (a real HTTP
server) on a loop in a thread of its own, so Helm's blocking render can ask it.

helm-python-sdk's ``Config(kube_apiserver=url).render`` renders cluster-aware:
``lookup`` asks the emulator, nothing is created.
"""
from __future__ import annotations

import asyncio
import base64
import threading
from concurrent.futures import Future
from pathlib import Path

import helm_python
import kmock

from tests.support.charts import NAMESPACE, RELEASE

# What the charts look up, and nothing else: a lookup of any other kind is a test's mistake.
RESOURCES = {"v1/secrets": "Secret", "v1/persistentvolumeclaims": "PersistentVolumeClaim"}
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


class LookupCluster:
    """An emulated API server holding the objects a test puts in it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self.url = ""

    def __enter__(self) -> "LookupCluster":
        self._thread.start()
        started: Future = Future()
        self._done = asyncio.run_coroutine_threadsafe(self._serve(started), self._loop)
        self.url = started.result(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._done.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _serve(self, started: Future) -> None:
        self._stop = asyncio.Event()
        try:
            async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
                for resource, kind in RESOURCES.items():
                    emulator.resources[resource] = {"kind": kind, "namespaced": True, "verbs": VERBS}
                self._emulator = emulator
                started.set_result(str(server.url))
                await self._stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    def put(self, obj: dict, namespace: str = NAMESPACE) -> None:
        """Store ``obj`` as the API server would hold it (as a previous release left it)."""
        plural = {kind: resource for resource, kind in RESOURCES.items()}[obj["kind"]]
        stored = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        self._emulator.objects[kmock.resource(plural), namespace, obj["metadata"]["name"]] = stored

    def put_secret(self, name: str, namespace: str = NAMESPACE, **data: str) -> None:
        self.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
                  "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}, namespace)

    def render(self, chart: Path, values: dict | None = None, *, upgrade: bool = False) -> dict[str, str]:
        """Render as ``helm install``/``helm upgrade`` would against this cluster: template path -> text."""
        with helm_python.Config(kube_apiserver=self.url, namespace=NAMESPACE) as config, \
                helm_python.Chart.load(chart) as loaded:
            return config.render(loaded, values or {}, name=RELEASE, namespace=NAMESPACE,
                                 is_install=not upgrade, is_upgrade=upgrade)
