"""A cluster for the operator tests: kmock's KubernetesEmulator (the API) plus
the parts of a cluster that kmock 0.8 does not play, played here:

- the API server's own bookkeeping: ``uid``, ``generation`` (bumped when the
  spec changes), ``creationTimestamp``, ``generateName``, ``resourceVersion``
  (and 422 for a JSON patch whose resourceVersion test fails, as kopf expects);
- the garbage collector: objects whose owner is gone are deleted (ownerReferences);
- the Job controller: a Job's pods (``parallelism`` of them) and its status
  (active/succeeded/failed counts, the Complete/Failed condition, backoffLimit 0);
- the kubelet: each pod runs as a script says (a log, an exit code, a waiting
  reason such as ImagePullBackOff, unschedulable, or running until deleted),
  or hands its PodSpec to a real runner (podman, in the end-to-end test);
- ``pods/log`` as text, per container, with ``tailLines`` then ``limitBytes``
  applied as the API server applies them (a pod of several containers needs
  ``container``: 400 otherwise), and a mesh's sidecar injected on request;
- the Namespace collection itself: kmock 0.8 reads ``/api/v1/namespaces``
  as the prefix of a namespaced path and answers 500, so kopf in namespaced
  mode (the chart's) could not start; the path is parsed as the API server
  does, and the test namespaces exist as Namespace objects;
- what a real ``kubectl`` needs (tests/operator/test_operator_pipeline_gate.py):
  list answers with ``kind``, ``apiVersion`` and a numeric ``resourceVersion``,
  ``fieldSelector=metadata.name=NAME`` on lists and watches (``kubectl wait``
  follows one object so), each resource's ``singular`` name and short names
  in discovery, and the OpenAPI v3 document that tells ``kubectl create`` the
  server validates LoadTests itself (``fieldValidation``; kubectl 1.37 refuses
  to create anything when it finds no OpenAPI document), and so the LoadTests
  kubectl creates are checked against their CRD (schema, unknown fields, CEL).

The operator itself runs for real: kopf's runtime, the official kubernetes
client, over HTTP (over TLS with in-cluster login when run as its chart pod).
"""
from __future__ import annotations

import asyncio
import copy
import threading
import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import jsonpatch
import kmock
import kopf
from kmock._internal import parsing as kmock_parsing

from tests.operator import api_rules

GROUP_VERSION = "perf.aiblog.dev/v1alpha1"
NAMESPACE = "perf"
RESOURCES = {
    f"{GROUP_VERSION}/loadtests": {"kind": "LoadTest", "subresources": ["status"], "shortnames": ["lt"],
                                   "categories": ["perf"]},
    f"{GROUP_VERSION}/loadtestresults": {"kind": "LoadTestResult"},
    "batch/v1/jobs": {"kind": "Job", "subresources": ["status"]},
    "v1/pods": {"kind": "Pod", "subresources": ["log", "status", "eviction"]},
    "v1/services": {"kind": "Service"},
    "v1/configmaps": {"kind": "ConfigMap"},
    "v1/secrets": {"kind": "Secret"},
    "networking.k8s.io/v1/networkpolicies": {"kind": "NetworkPolicy"},
    "v1/persistentvolumeclaims": {"kind": "PersistentVolumeClaim"},
    "v1/events": {"kind": "Event"},
    # kopf waits for these two to be discoverable before it watches anything.
    "v1/namespaces": {"kind": "Namespace", "namespaced": False},
    "apiextensions.k8s.io/v1/customresourcedefinitions": {"kind": "CustomResourceDefinition", "namespaced": False},
}
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
NAMESPACES = (NAMESPACE, "monitoring")
SIDECAR = "istio-proxy"  # exist from the start, as in a cluster the chart is installed in


_kmock_parse_path = kmock_parsing.parse_path


def _parse_path(path: str):
    """``/api/v1/namespaces`` and ``/api/v1/namespaces/NAME`` name Namespace
    objects; longer paths below a namespace are namespaced resources."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"] and parts[2:3] == ["namespaces"] and len(parts) in (3, 4):
        return kmock_parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _kmock_parse_path(path)


kmock_parsing.parse_path = _parse_path
API_URL: dict = {}  # the running emulator's, for kopf's login handler


@kopf.on.login()
def login_to_the_emulator(**_):
    return kopf.ConnectionInfo(server=API_URL["url"], insecure=True)


_RESULT_SCHEMA: dict = {}


def _result_schema() -> dict:
    if not _RESULT_SCHEMA:
        from tests.operator.support import crd_schema
        _RESULT_SCHEMA.update(crd_schema("loadtestresults.perf.aiblog.dev.yaml"))
    return _RESULT_SCHEMA


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Emulator(kmock.KubernetesEmulator):
    """kmock's API emulator with the metadata a real API server fills in, and its
    refusals of the operator's children (tests/operator/api_rules.py)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._versions = itertools.count(1)
        # plural -> (status, reason, message): what the API answers every create of that kind
        # (a test's quota or outage), on top of api_rules' refusals.
        self.refusals: dict[str, tuple[int, str, str]] = {}
        self.last_version = 0  # the newest resourceVersion given: a list's own, as etcd's revision

    async def _handle(self, request):
        data = request.data
        if request.resource is not None and request.action == kmock.action.CREATE and not request.subresource \
                and request.resource.plural == "loadtests" and request.params.get("fieldValidation"):
            problem = _loadtest_problem(data)  # kubectl was told the server validates (openapi_v3_loadtests)
            if problem:
                return await self._render_error(kmock.KubernetesError(status=422, reason="Invalid", message=problem))
        if request.resource is not None and request.action == kmock.action.CREATE and not request.subresource:
            plural = request.resource.plural
            refused = self.refusals.get(plural) or api_rules.refusal(plural, data, _result_schema())
            if refused:
                status, reason, message = refused
                return await self._render_error(kmock.KubernetesError(status=status, reason=reason, message=message))
        if request.resource is not None and request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            version = str(next(self._versions))
            self.last_version = int(version)
            if isinstance(data, list):  # a JSON patch: its own "test" op checks the old version first
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
            elif isinstance(data, dict):
                meta = data.setdefault("metadata", {})
                meta["resourceVersion"] = version
                if request.action == kmock.action.CREATE:
                    if not meta.get("name") and meta.get("generateName"):  # kopf names its Events so
                        meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:8]}"
                    meta.setdefault("uid", str(uuid.uuid4()))
                    meta.setdefault("creationTimestamp", now_iso())
                    meta["generation"] = 1
                elif request.name and not request.subresource and "spec" in data:
                    current = self._current(request)
                    if current is not None and data["spec"] != current.get("spec"):
                        meta["generation"] = int((current.get("metadata") or {}).get("generation") or 1) + 1
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as exc:  # a stale resourceVersion: 422, as the API server answers
            return await self._render_error(kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)))

    async def _serve_list(self, request):
        """A list as the API server answers it: its kind and apiVersion, a numeric
        resourceVersion, and only the object a ``metadata.name`` field selector names."""
        answer = await super()._serve_list(request)
        kind = next((self._resources[r].kind for r in self._resources if r == request.resource), None)
        group_version = "/".join(p for p in (request.resource.group, request.resource.version) if p)
        return {"kind": f"{kind}List", "apiVersion": group_version,
                "metadata": {"resourceVersion": str(self.last_version)},
                "items": [o for o in answer["items"] if _selected(request, o)]}

    def _serve_watch(self, request):
        """A watch as the API server streams it: typed application/json (client-go refuses
        kmock's application/octet-stream), with the field selector applied. A streaming list
        (``sendInitialEvents``, which needs a closing bookmark kmock does not send) is refused
        as by an API server without the WatchList feature: client-go then lists and watches."""
        if request.params.get("sendInitialEvents") == "true":
            return kmock.KubernetesError(status=422, reason="Invalid", message=(
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"))
        return kmock.Response(headers={"Content-Type": "application/json"}, payload=self._watch_events(request))

    async def _watch_events(self, request):
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict) or _selected(request, event.get("object") or {}):
                yield event

    async def _serve_version(self, request):
        """Discovery as the API server gives it: short names and categories on the resource, not on
        its subresources (kubectl warns of an ambiguous short name otherwise)."""
        answer = await super()._serve_version(request)
        for entry in answer["resources"]:
            if "/" in entry["name"]:
                entry.update(shortNames=[], categories=[])
        return answer

    def _current(self, request) -> dict | None:
        for (resource, namespace, name), obj in self.objects.items():
            if resource == request.resource and namespace == request.namespace and name == request.name \
                    and not obj.deleted:
                return dict(obj)
        return None


def _selected(request, obj: dict) -> bool:
    """Whether ``obj`` passes the request's field selector (``metadata.name`` and
    ``metadata.namespace``, the two every resource supports; ``=``, ``==`` or ``!=``)."""
    meta = obj.get("metadata") or {}
    for term in filter(None, (request.params.get("fieldSelector") or "").split(",")):
        negated = "!=" in term
        field, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        actual = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}.get(field.strip())
        if (actual == value.strip()) == negated:
            return False
    return True


def _loadtest_problem(obj) -> str | None:
    """What the API server answers a LoadTest outside its CRD (schema, unknown fields under strict
    field validation, CEL rules), as kubectl creates it; None when it fits."""
    import jsonschema

    from tests.operator.support import cel_refusals, closed, crd_schema
    schema = crd_schema("loadtests.perf.aiblog.dev.yaml")
    name = ((obj or {}).get("metadata") or {}).get("name") or ((obj or {}).get("metadata") or {}).get("generateName")
    errors = sorted(jsonschema.Draft4Validator(closed(schema)).iter_errors(obj), key=str)
    problems = [f"{'.'.join(map(str, e.absolute_path))}: Invalid value: {e.message}" for e in errors]
    problems += cel_refusals(obj, schema) if not errors else []
    return f'LoadTest.perf.aiblog.dev "{name}" is invalid: {"; ".join(problems)}' if problems else None


def openapi_v3_root() -> dict:
    """``GET /openapi/v3``: where each group version's document is (here only the LoadTests')."""
    return {"paths": {f"apis/{GROUP_VERSION}": {"serverRelativeURL": f"/openapi/v3/apis/{GROUP_VERSION}?hash=1"}}}


def openapi_v3_loadtests() -> dict:
    """The LoadTests' OpenAPI v3 document, as much of it as kubectl reads before a create: the PATCH
    operation of the GVK takes ``fieldValidation``, so kubectl leaves the validation to the server."""
    group, version = GROUP_VERSION.split("/")
    gvk = {"group": group, "version": version, "kind": "LoadTest"}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": {f"/apis/{GROUP_VERSION}/namespaces/{{namespace}}/loadtests/{{name}}": {"patch": {
                "x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}}}}},
            "components": {"schemas": {"dev.aiblog.perf.v1alpha1.LoadTest": {
                "type": "object", "x-kubernetes-group-version-kind": [gvk]}}}}


@dataclass
class PodScript:
    """What the fake kubelet does with the pods of one role (master or worker)."""
    log: str = ""
    exit_code: int = 0
    run_seconds: float = 0.3  # Running this long, then terminated with exit_code
    waiting: str | None = None  # e.g. "ImagePullBackOff": the container never starts
    unschedulable: bool = False
    forever: bool = False  # runs until deleted
    sidecar_log: str | None = None  # a mesh injects a sidecar container ("istio-proxy") that logs this
    # A mesh's classic sidecar that never exits: the pod stays Running (and its Job active) after
    # the runner container has terminated, as on a cluster with Istio's injection.
    sidecar_forever: bool = False


@dataclass
class FakeCluster:
    """The controller-manager and kubelet around the emulator (see the module's docstring)."""
    k: Emulator
    scripts: dict = field(default_factory=dict)  # role -> PodScript
    runner: object | None = None  # plays pods for real when set (end to end)
    logs: dict = field(default_factory=dict)  # pod name -> log text (of its first container)
    sidecar_logs: dict = field(default_factory=dict)  # pod name -> the injected sidecar's log
    log_requests: list = field(default_factory=list)  # the query of every pods/log request, in order
    started: dict = field(default_factory=dict)  # pod name -> monotonic start
    jobs_seen: set = field(default_factory=set)
    evictions: list = field(default_factory=list)  # (pod name, wall-clock time) of every eviction granted
    protected: set = field(default_factory=set)  # pods a PodDisruptionBudget protects now: eviction is 429
    on_eviction: object | None = None  # called with an evicted pod's name (the end-to-end test restarts the blog)

    def live(self, plural: str) -> list[tuple[tuple, kmock.Object]]:
        return [(key, obj) for key, obj in list(self.k.objects.items())
                if key[0].plural == plural and not obj.deleted]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.collect_garbage()
            self.control_jobs()
            await self.kubelet()
            self.update_job_statuses()
            await asyncio.sleep(0.05)

    # -- garbage collector --------------------------------------------------------
    def collect_garbage(self) -> None:
        for _ in range(5):  # owners of owners: a few rounds reach the leaves
            uids = {(obj.get("metadata") or {}).get("uid") for _, obj in self.live_all()}
            orphans = [(key, obj) for key, obj in self.live_all()
                       if (refs := (obj.get("metadata") or {}).get("ownerReferences"))
                       and not any(ref.get("uid") in uids for ref in refs)]
            if not orphans:
                return
            for key, obj in orphans:
                self.forget_pod(key)
                obj.delete()

    def live_all(self):
        return [(key, obj) for key, obj in list(self.k.objects.items()) if not obj.deleted]

    def forget_pod(self, key) -> None:
        if key[0].plural == "pods" and self.runner is not None:
            self.runner.stop(key[2])

    # -- Job controller --------------------------------------------------------------
    def control_jobs(self) -> None:
        for (resource, namespace, name), job in self.live("jobs"):
            if name in self.jobs_seen:
                continue
            self.jobs_seen.add(name)
            spec = copy.deepcopy(job.raw["spec"])
            template = spec["template"]
            job_uid = job["metadata"]["uid"]
            for index in range(int(spec.get("parallelism", 1))):
                pod_name = f"{name}-{index}-{uuid.uuid4().hex[:5]}"
                labels = {**(template.get("metadata") or {}).get("labels", {}), "job-name": name}
                self.k.objects[kmock.resource("v1/pods"), namespace, pod_name] = {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "namespace": namespace, "labels": labels, "uid": str(uuid.uuid4()),
                                 "creationTimestamp": now_iso(),
                                 "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                      "uid": job_uid, "controller": True}]},
                    "spec": self.admit(template["spec"], labels),
                    "status": {"phase": "Pending"},
                }

    def admit(self, pod_spec: dict, labels: dict) -> dict:
        """What admission does to a new pod: a mesh injects its sidecar when the role's script says so."""
        script = self.scripts.get(labels.get("perf.aiblog.dev/role"), PodScript())
        if script.sidecar_log is None and not script.sidecar_forever:
            return pod_spec
        return {**pod_spec, "containers": [*pod_spec["containers"], {"name": SIDECAR, "image": "proxyv2"}]}

    def update_job_statuses(self) -> None:
        pods = self.live("pods")
        for (_, namespace, name), job in self.live("jobs"):
            if job.get("status", {}).get("conditions"):
                continue
            mine = [p for _, p in pods if p["metadata"]["labels"].get("job-name") == name]
            phases = [p["status"].get("phase") for p in mine]
            completions = int(job["spec"].get("completions", 1))
            status = {"active": sum(ph in ("Pending", "Running") for ph in phases),
                      "succeeded": phases.count("Succeeded"), "failed": phases.count("Failed")}
            if status["failed"] > int(job["spec"].get("backoffLimit", 6)):
                status["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "lastTransitionTime": now_iso()}]
            elif status["succeeded"] >= completions:
                status["conditions"] = [{"type": "Complete", "status": "True", "lastTransitionTime": now_iso()}]
            job.patch({"status": status})

    # -- kubelet ---------------------------------------------------------------------------
    async def kubelet(self) -> None:
        loop = asyncio.get_running_loop()
        for (_, namespace, name), pod in self.live("pods"):
            phase = pod["status"].get("phase")
            if phase in ("Succeeded", "Failed"):
                continue
            role = pod["metadata"]["labels"].get("perf.aiblog.dev/role")
            if self.runner is not None:
                status, log = await loop.run_in_executor(None, self.runner.step, name, copy.deepcopy(pod.raw))
                if log is not None:
                    self.logs[name] = log
                if status:
                    pod.patch({"status": status})
                continue
            script = self.scripts.get(role, PodScript())
            if script.unschedulable:
                if phase != "Pending" or not pod["status"].get("conditions"):
                    pod.patch({"status": {"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": "0/3 nodes are available: 3 Insufficient cpu.", "lastTransitionTime": now_iso()}]}})
                continue
            container = pod["spec"]["containers"][0]["name"]
            if script.waiting:
                pod.patch({"status": {"phase": "Pending", "startTime": pod["metadata"]["creationTimestamp"],
                                      "containerStatuses": [{"name": container, "ready": False, "state": {
                                          "waiting": {"reason": script.waiting,
                                                      "message": f"Back-off pulling image {container}"}}}]}})
                continue
            began = self.started.setdefault(name, loop.time())
            self.logs[name] = script.log
            if script.sidecar_log is not None:
                self.sidecar_logs[name] = script.sidecar_log
            if script.forever or loop.time() - began < script.run_seconds:
                if phase != "Running":
                    pod.patch({"status": {"phase": "Running", "startTime": now_iso(), "containerStatuses": [
                        {"name": container, "ready": True, "state": {"running": {"startedAt": now_iso()}}}]}})
                continue
            runner = {"name": container, "ready": False,
                      "state": {"terminated": {"exitCode": script.exit_code, "finishedAt": now_iso()}}}
            if script.sidecar_forever:  # the runner is done; the sidecar holds the pod open
                if not any("terminated" in s["state"] for s in pod["status"].get("containerStatuses") or []):
                    pod.patch({"status": {"phase": "Running", "containerStatuses": [runner, {
                        "name": SIDECAR, "ready": True, "state": {"running": {"startedAt": now_iso()}}}]}})
                continue
            pod.patch({"status": {"phase": "Succeeded" if script.exit_code == 0 else "Failed",
                                  "containerStatuses": [runner]}})

    def serve_eviction(self, request):
        """``POST pods/NAME/eviction`` as the API server answers it: 429 while a
        PodDisruptionBudget forbids it, else the pod is deleted (and its kubelet stops it)."""
        if str(request.method).upper().rsplit(".", 1)[-1] != "POST":
            return kmock.KubernetesError(status=405, reason="MethodNotAllowed", message="evictions are created")
        found = next(((key, obj) for key, obj in self.live("pods")
                      if key[1] == request.namespace and key[2] == request.name), None)
        if found is None:
            return kmock.KubernetesError(status=404, reason="NotFound", message=f'pods "{request.name}" not found')
        if request.name in self.protected:
            return kmock.KubernetesError(status=429, reason="TooManyRequests", message=(
                "Cannot evict pod as it would violate the pod's disruption budget."))
        key, pod = found
        self.forget_pod(key)
        pod.delete()
        self.evictions.append((request.name, time.time()))
        if self.on_eviction is not None:
            self.on_eviction(request.name)
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 201}

    def serve_log(self, request):
        """``GET pods/NAME/log`` as the API server answers it."""
        self.log_requests.append(dict(request.params))
        pod = next((obj for (resource, namespace, name), obj in self.live("pods")
                    if namespace == request.namespace and name == request.name), None)
        containers = [c["name"] for c in pod["spec"]["containers"]] if pod is not None else []
        chosen = request.params.get("container") or (containers[0] if len(containers) == 1 else None)
        if pod is None:
            return kmock.KubernetesError(status=404, reason="NotFound", message=f'pods "{request.name}" not found')
        if chosen is None:
            return kmock.KubernetesError(status=400, reason="BadRequest", message=(
                f"a container name must be specified for pod {request.name}, choose one of: {containers}"))
        if chosen not in containers:
            return kmock.KubernetesError(status=400, reason="BadRequest", message=(
                f"container {chosen} is not valid for pod {request.name}"))
        text = self.sidecar_logs.get(request.name, "") if chosen == SIDECAR else self.logs.get(request.name, "")
        data = text.encode("utf-8")
        if request.params.get("tailLines"):
            data = b"".join(data.splitlines(keepends=True)[-int(request.params["tailLines"]):])
        if request.params.get("limitBytes"):
            data = data[:int(request.params["limitBytes"])]   # the start of what the tail kept
        return data


class OperatorThread:
    """The emulator and the fake cluster in one thread with its own event loop, and the real kopf
    operator in another: kopf cancels every task of its loop that outlives it, so it gets a loop
    of its own, as it has a process of its own in a cluster."""

    def __init__(self, configure_operator, run_operator: bool = True):
        self.configure_operator = configure_operator
        self.run_operator = run_operator  # False: the test runs the operator itself (as a process)
        self.url: str | None = None
        self.k: Emulator | None = None
        self.cluster: FakeCluster | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._operator: tuple[threading.Thread, threading.Event] | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> "OperatorThread":
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"the emulator did not start: {self.error!r}")
        if self.run_operator:
            self.configure_operator(self.url)
            self._start_operator()
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() or stop()
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Emulator() as k, kmock.Server(k) as server:
            for name, info in RESOURCES.items():
                k.resources[name] = {"namespaced": True, "verbs": VERBS, "singular": info["kind"].lower(), **info}
            for namespace in NAMESPACES:
                k.objects[kmock.resource("v1/namespaces"), None, namespace] = {
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": namespace, "uid": str(uuid.uuid4()), "resourceVersion": "1",
                                 "labels": {"kubernetes.io/metadata.name": namespace}}}
            self.k, self.url = k, str(server.url).rstrip("/")
            self.cluster = FakeCluster(k)
            k[kmock.subresource("log")] << self.cluster.serve_log
            k[kmock.subresource("eviction")] << self.cluster.serve_eviction
            k["get /openapi/v3"] << openapi_v3_root
            k[f"get /openapi/v3/apis/{GROUP_VERSION}"] << openapi_v3_loadtests
            cluster_task = asyncio.create_task(self.cluster.run(self._stop))
            API_URL["url"] = self.url
            self._ready.set()
            await self._stop.wait()
            await cluster_task

    def _start_operator(self) -> None:
        stop_flag = threading.Event()

        def run() -> None:
            try:
                asyncio.run(kopf.operator(clusterwide=True, standalone=True, stop_flag=stop_flag))
            except BaseException as exc:  # reported by stop()
                self.error = exc

        thread = threading.Thread(target=run, daemon=True, name="kopf")
        thread.start()
        self._operator = (thread, stop_flag)

    def _stop_operator(self) -> None:
        thread, stop_flag = self._operator
        stop_flag.set()
        thread.join(30)

    def restart_operator(self) -> None:
        """Stop kopf and start a new one: the state it had in memory is gone, as after a pod restart."""
        self._stop_operator()
        self.configure_operator(self.url)  # a new process has new connections too
        self._start_operator()

    def stop(self) -> None:
        if self._operator is not None:
            self._stop_operator()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(40)
