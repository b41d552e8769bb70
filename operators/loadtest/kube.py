"""The few API calls the operator makes, with the official ``kubernetes`` client.

Objects go in and come out as plain dicts in the API's own camelCase (the
shape kopf hands to handlers and the manifests are written in). Listing also
filters by labels on this side: the API honours the selector, and a test
emulator that ignores it still gets the right answer.
"""
from __future__ import annotations

import json

from kubernetes import client
from kubernetes.client.rest import ApiException

from .names import GROUP, RUN_LABEL, TEST_LABEL, VERSION, label_value

RESULTS = "loadtestresults"
LOADTESTS = "loadtests"


def _dict(response) -> dict:
    return json.loads(response.data or b"{}")


def _matches(obj: dict, selector: dict) -> bool:
    found = (obj.get("metadata") or {}).get("labels") or {}
    return all(found.get(k) == v for k, v in selector.items())


def _selector(selector: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


class Cluster:
    def __init__(self, api_client: client.ApiClient):
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.networking = client.NetworkingV1Api(api_client)

    # -- creating ---------------------------------------------------------------
    def create(self, namespace: str, manifest: dict) -> dict:
        """Create the object, or return the one already there (a restart re-runs a creation: no duplicates)."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        try:
            return _dict(self._create(namespace, kind, manifest))
        except ApiException as exc:
            if exc.status != 409:
                raise
        if kind == "Secret":  # the run's token: the one there is what its pods read; ours is never needed
            return manifest
        return self.read(namespace, kind, name)

    def _create(self, namespace: str, kind: str, body: dict):
        if kind == "Job":
            return self.batch.create_namespaced_job(namespace, body, _preload_content=False)
        if kind == "Service":
            return self.core.create_namespaced_service(namespace, body, _preload_content=False)
        if kind == "ConfigMap":
            return self.core.create_namespaced_config_map(namespace, body, _preload_content=False)
        if kind == "Secret":
            return self.core.create_namespaced_secret(namespace, body, _preload_content=False)
        if kind == "NetworkPolicy":
            return self.networking.create_namespaced_network_policy(namespace, body, _preload_content=False)
        if kind == "LoadTestResult":
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, RESULTS, body,
                                                               _preload_content=False)
        raise ValueError(f"the operator does not create {kind} objects")

    def read(self, namespace: str, kind: str, name: str) -> dict:
        if kind == "Job":
            return _dict(self.batch.read_namespaced_job(name, namespace, _preload_content=False))
        if kind == "Service":
            return _dict(self.core.read_namespaced_service(name, namespace, _preload_content=False))
        if kind == "ConfigMap":
            return _dict(self.core.read_namespaced_config_map(name, namespace, _preload_content=False))
        if kind == "NetworkPolicy":
            return _dict(self.networking.read_namespaced_network_policy(name, namespace, _preload_content=False))
        if kind == "LoadTestResult":
            return _dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, RESULTS, name,
                                                                  _preload_content=False))
        raise ValueError(f"the operator does not read {kind} objects")

    def labels_of(self, namespace: str, kind: str, name: str) -> dict | None:
        """An object's labels, or None when it does not exist. A Secret is read whole
        (RBAC cannot grant its metadata alone); only its labels leave this method."""
        readers = {"Secret": self.core.read_namespaced_secret, "ConfigMap": self.core.read_namespaced_config_map,
                   "PersistentVolumeClaim": self.core.read_namespaced_persistent_volume_claim}
        try:
            found = _dict(readers[kind](name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict((found.get("metadata") or {}).get("labels") or {})

    # -- listing ----------------------------------------------------------------
    def jobs(self, namespace: str, **labels: str) -> list[dict]:
        selector = _labels(labels)
        items = _dict(self.batch.list_namespaced_job(namespace, label_selector=_selector(selector),
                                                     _preload_content=False)).get("items", [])
        return [job for job in items if _matches(job, selector)]

    def pods(self, namespace: str, **labels: str) -> list[dict]:
        return self.pods_matching(namespace, _labels(labels))

    def pods_matching(self, namespace: str, selector: dict) -> list[dict]:
        """Pods with all of ``selector``'s labels (full label keys: a fault's target, or a run's)."""
        items = _dict(self.core.list_namespaced_pod(namespace, label_selector=_selector(selector),
                                                    _preload_content=False)).get("items", [])
        return [pod for pod in items if _matches(pod, selector)]

    def evict(self, namespace: str, name: str) -> None:
        """The Eviction API (not a DELETE): it honours PodDisruptionBudgets, answering 429 when one forbids it."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        self.core.create_namespaced_pod_eviction(name, namespace, body, _preload_content=False)

    def results(self, namespace: str, test: str) -> list[dict]:
        selector = {TEST_LABEL: label_value(test)}
        items = _dict(self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, RESULTS, label_selector=_selector(selector),
            _preload_content=False)).get("items", [])
        return [item for item in items if _matches(item, selector)]

    def pod_log(self, namespace: str, name: str, container: str, *, tail_lines: int, limit_bytes: int) -> str:
        """The last ``tail_lines`` of one container's log, at most ``limit_bytes`` of
        them (the API server keeps the start of the tail). A server that ignores
        the limits is still read no further than ``limit_bytes``."""
        response = self.core.read_namespaced_pod_log(name, namespace, container=container, tail_lines=tail_lines,
                                                     limit_bytes=limit_bytes, _preload_content=False)
        try:
            data = response.read(limit_bytes)
        finally:
            response.release_conn()
        return data.decode("utf-8", errors="replace")

    # -- changing ---------------------------------------------------------------
    def patch_status(self, namespace: str, name: str, status: dict) -> None:
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, LOADTESTS, name,
                                                          {"status": status}, _preload_content=False)

    def annotate_job(self, namespace: str, name: str, annotations: dict) -> None:
        self.batch.patch_namespaced_job(name, namespace, {"metadata": {"annotations": annotations}},
                                        _preload_content=False)

    def service_peer(self, namespace: str, name: str, port: int) -> dict:
        """A Service's pods and target port, as a NetworkPolicy's peer; a Service not there
        yet gives any pod of the namespace on ``port``."""
        try:
            service = self.read(namespace, "Service", name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return {"pods": {}, "port": port}
        found = next((p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port), {})
        return {"pods": (service.get("spec") or {}).get("selector") or {}, "port": found.get("targetPort", port)}

    def delete(self, namespace: str, kind: str, name: str) -> None:
        """Delete, with the pods of a Job too; already gone is fine."""
        options = client.V1DeleteOptions(propagation_policy="Background")
        try:
            if kind == "Job":
                self.batch.delete_namespaced_job(name, namespace, body=options, _preload_content=False)
            elif kind == "Service":
                self.core.delete_namespaced_service(name, namespace, _preload_content=False)
            elif kind == "NetworkPolicy":
                self.networking.delete_namespaced_network_policy(name, namespace, _preload_content=False)
            elif kind == "LoadTestResult":
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, RESULTS, name,
                                                            body=options, _preload_content=False)
            else:
                raise ValueError(f"the operator does not delete {kind} objects")
        except ApiException as exc:
            if exc.status != 404:
                raise


def _labels(short: dict) -> dict:
    names = {"test": TEST_LABEL, "run": RUN_LABEL}
    return {names.get(k, k): label_value(v) if k == "test" else v for k, v in short.items()}


__all__ = ["Cluster", "ApiException"]
