"""The test plays the kubelet: a rendered Kubernetes PodSpec run under podman.

`podman kube play` cannot run the charts here (host network refuses
containerPorts, secretKeyRef env fails; see DESIGN.md), so each container of a
PodSpec becomes a ``podman run --network host`` with what the kubelet would
give it: command and args (with ``$(VAR)`` expansion), env and envFrom with
Secret/ConfigMap references resolved from the rendered objects, the user and
group, a read-only root, dropped capabilities, no new privileges, emptyDir as
tmpfs, ConfigMap/Secret volumes as read-only files. Init containers run to
completion first, in order; then the containers start, and ``Pod.wait_ready``
performs the rendered probes (httpGet, tcpSocket, exec) as the kubelet does.

With the host network a pod's ports are the host's: give each pod its own
ports through the chart's values. Reused by the operator tests to run Job pods
(``Pod.run_to_completion``).
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack import StackError, wait_until
from tests.support.container import CONTAINERS_CONF  # runc and the ulimits this machine needs


class PodSpecError(RuntimeError):
    """The PodSpec cannot run as written (what the kubelet would refuse or report)."""


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    if shutil.which("podman") is None:
        raise PodSpecError("podman not found: install the Debian packages podman, runc and uidmap")
    env = {"CONTAINERS_CONF": str(CONTAINERS_CONF), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(["podman", *args], env=env, text=True, capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise PodSpecError(f"podman {' '.join(args[:2])} failed ({result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return result


@dataclass
class Cluster:
    """The objects a pod's references resolve against: the render's ConfigMaps and
    Secrets plus any the test creates (an ``existingSecret``). ``api_server``
    (host, port) is the API server the kubelet names to every container
    (KUBERNETES_SERVICE_HOST/PORT); ``token`` is what a projected
    serviceAccountToken holds."""
    objects: list[dict]
    api_server: tuple[str, int] | None = None
    token: str = "test-service-account-token"

    def _find(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    def data(self, kind: str, name: str) -> dict[str, str] | None:
        found = self._find(kind, name)
        if found is None:
            return None
        values = dict(found.get("data") or {})
        if kind == "Secret":
            values = {k: base64.b64decode(v).decode() for k, v in values.items()}
            values.update(found.get("stringData") or {})
        return values

    def key(self, kind: str, ref: dict) -> str | None:
        values = self.data(kind, ref["name"])
        if values is None or ref["key"] not in values:
            if ref.get("optional"):
                return None
            missing = "object" if values is None else f"key {ref['key']!r} in"
            raise PodSpecError(f"CreateContainerConfigError: {missing} {kind} {ref['name']!r} not found")
        return values[ref["key"]]


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, others stay."""
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))
    return _VAR_REF.sub(one, text)


def container_env(container: dict, cluster: Cluster, pod_name: str, namespace: str) -> dict[str, str]:
    """The environment the kubelet gives a container (the API server's Service
    first, then envFrom, then env, in order)."""
    env: dict[str, str] = {}
    if cluster.api_server:
        host, port = cluster.api_server
        env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=str(port),
                   KUBERNETES_SERVICE_PORT_HTTPS=str(port))
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref_key in source:
                values = cluster.data(kind, source[ref_key]["name"])
                if values is None and not source[ref_key].get("optional"):
                    raise PodSpecError(f"CreateContainerConfigError: {kind} {source[ref_key]['name']!r} not found")
                env.update({prefix + k: v for k, v in (values or {}).items()})
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = expand(str(entry["value"]), env)
            continue
        source = entry.get("valueFrom") or {}
        if "secretKeyRef" in source:
            value = cluster.key("Secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = cluster.key("ConfigMap", source["configMapKeyRef"])
        elif "fieldRef" in source:
            value = {"metadata.name": pod_name, "metadata.namespace": namespace,
                     "status.podIP": "127.0.0.1", "spec.nodeName": socket.gethostname()}.get(
                source["fieldRef"]["fieldPath"])
            if value is None:
                raise PodSpecError(f"fieldRef {source['fieldRef']['fieldPath']} is not emulated")
        else:
            raise PodSpecError(f"env {entry['name']}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[entry["name"]] = value
    return env


def security(pod_spec: dict, container: dict) -> dict:
    """The container's effective security context (its own settings win over the pod's)."""
    merged = {k: v for k, v in (pod_spec.get("securityContext") or {}).items()
              if k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")}
    merged.update(container.get("securityContext") or {})
    return merged


@dataclass
class RunPlan:
    """One container as `podman run` arguments (kept for the test to inspect)."""
    name: str
    args: list[str]
    env: dict[str, str]
    container: dict


def plan_container(pod_spec: dict, container: dict, cluster: Cluster, pod_name: str, namespace: str,
                   scratch: Path, detach: bool) -> RunPlan:
    name = f"{pod_name}-{container['name']}"
    env = container_env(container, cluster, pod_name, namespace)
    context = security(pod_spec, container)
    args = ["run", "--name", name, "--replace", "--network", "host", "--pull", "never"]
    args += ["-d"] if detach else []
    user = context.get("runAsUser")
    if context.get("runAsNonRoot") and not user:
        # The kubelet refuses runAsNonRoot without a numeric non-zero user it can verify.
        raise PodSpecError(f"{container['name']}: runAsNonRoot without a non-zero runAsUser")
    if user is not None:
        args += ["--user", f"{user}:{context.get('runAsGroup', user)}"]
    if context.get("readOnlyRootFilesystem"):
        # Without the second flag podman adds writable tmpfs on /run, /tmp and /var/tmp: a pod has none.
        args += ["--read-only", "--read-only-tmpfs=false"]
    if context.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    capabilities = context.get("capabilities") or {}
    args += [f"--cap-drop={cap}" for cap in capabilities.get("drop") or []]
    args += [f"--cap-add={cap}" for cap in capabilities.get("add") or []]
    if context.get("privileged"):
        raise PodSpecError(f"{container['name']}: privileged containers are not run here")
    args += mounts(pod_spec, container, cluster, scratch / container["name"], pod_name, namespace)
    if container.get("workingDir"):
        args += ["--workdir", container["workingDir"]]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    command = [expand(part, env) for part in container.get("command") or []]
    container_args = [expand(part, env) for part in container.get("args") or []]
    if command:
        args += ["--entrypoint", json.dumps(command)]
    args.append(container["image"])
    args += container_args
    return RunPlan(name, args, env, container)


def mounts(pod_spec: dict, container: dict, cluster: Cluster, folder: Path, pod_name: str = "pod",
           namespace: str = "default") -> list[str]:
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    args: list[str] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodSpecError(f"{container['name']}: volumeMount {mount['name']!r} names no volume")
        path = mount["mountPath"]
        if "emptyDir" in volume:
            # An emptyDir is empty and writable by the pod's user. podman 4.3 gives a tmpfs the mode
            # (not the owner) of the image's folder at that path, so a 0700 folder of the image
            # became a root-owned 0700 tmpfs; U=true gives it to the container's user instead.
            options = f"type=tmpfs,destination={path},U=true,tmpfs-mode=1777"
            if volume["emptyDir"].get("sizeLimit"):
                options += f",tmpfs-size={_bytes(volume['emptyDir']['sizeLimit'])}"
            args += ["--mount", options]
            continue
        if "configMap" in volume or "secret" in volume:
            files = _object_files(mount["name"], volume, cluster)
        elif "projected" in volume:
            files = {}
            for source in volume["projected"]["sources"]:
                files.update(_projected_files(mount["name"], source, cluster, pod_name, namespace))
        else:
            raise PodSpecError(f"volume {mount['name']}: only emptyDir, configMap, secret and projected are emulated")
        written = _write_files(folder / mount["name"], files)
        target = f"{path}/{mount['subPath']}" if mount.get("subPath") else path
        source = written / mount["subPath"] if mount.get("subPath") else written
        args += ["-v", f"{source}:{target}:ro"]
    return args


def _object_files(volume_name: str, volume: dict, cluster: Cluster) -> dict[str, str]:
    """A configMap or secret volume's files: {path: content}."""
    kind, ref = ("ConfigMap", volume["configMap"]) if "configMap" in volume else ("Secret", volume["secret"])
    ref_name = ref.get("name") or ref.get("secretName")
    values = cluster.data(kind, ref_name)
    if values is None:
        raise PodSpecError(f"volume {volume_name}: {kind} {ref_name!r} not found")
    items = ref.get("items") or [{"key": k, "path": k} for k in values]
    return {item["path"]: values[item["key"]] for item in items}


def _projected_files(volume_name: str, source: dict, cluster: Cluster, pod_name: str,
                     namespace: str) -> dict[str, str]:
    """One source of a projected volume (the service-account token volume the kubelet writes)."""
    if "serviceAccountToken" in source:
        return {source["serviceAccountToken"]["path"]: cluster.token}
    if "configMap" in source or "secret" in source:
        return _object_files(volume_name, source, cluster)
    if "downwardAPI" in source:
        fields = {"metadata.namespace": namespace, "metadata.name": pod_name}
        return {item["path"]: fields[item["fieldRef"]["fieldPath"]] for item in source["downwardAPI"]["items"]}
    raise PodSpecError(f"volume {volume_name}: projected source {sorted(source)} is not emulated")


def _write_files(folder: Path, files: dict[str, str]) -> Path:
    """The files a volume shows, readable by any container user (the kubelet's 0644)."""
    folder.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    folder.chmod(0o755)
    for written in folder.rglob("*"):
        written.chmod(0o755 if written.is_dir() else 0o644)
    return folder


def _bytes(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
    for suffix, factor in units.items():
        if str(quantity).endswith(suffix):
            return int(float(str(quantity)[: -len(suffix)]) * factor)
    return int(quantity)


def container_port(container: dict, port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return declared["containerPort"]
    raise PodSpecError(f"{container['name']}: probe names port {port!r}, which the container does not declare")


@dataclass
class ProbeResult:
    ok: bool
    detail: str


@dataclass
class Pod:
    """A rendered PodSpec run under podman (containers named ``<name>-<container>``)."""
    name: str
    spec: dict
    cluster: Cluster
    namespace: str = "default"
    image: str | None = None  # replaces every container's image (the image under test)
    # Service names the cluster DNS would resolve, e.g. {"aiblog": "127.0.0.1"} (kube-proxy is not
    # emulated: give such a Service the same port as its target so the address works on loopback).
    hosts: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.scratch = Path(tempfile.mkdtemp(prefix=f"pod-{self.name}-"))
        self.scratch.chmod(0o755)

    def _prepared(self, container: dict) -> dict:
        return {**container, "image": self.image} if self.image else container

    def plan(self, container: dict, detach: bool) -> RunPlan:
        plan = plan_container(self.spec, self._prepared(container), self.cluster, self.name, self.namespace,
                              self.scratch, detach)
        for host, address in self.hosts.items():
            plan.args[1:1] = ["--add-host", f"{host}:{address}"]
        return plan

    def run_init_containers(self, timeout: float = 300) -> None:
        for container in self.spec.get("initContainers") or []:
            self.run_to_completion(container, timeout)

    def run_to_completion(self, container: dict, timeout: float = 300) -> str:
        """Run one container in the foreground (an init container, a Job's pod); its log on success."""
        plan = self.plan(container, detach=False)
        self.started.append(plan.name)
        result = podman(*plan.args, check=False, timeout=timeout)
        if result.returncode != 0:
            raise PodSpecError(f"{plan.name} exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}")
        return result.stdout + result.stderr

    def start(self) -> "Pod":
        """Init containers to completion, then every container detached."""
        self.run_init_containers()
        for container in self.spec["containers"]:
            plan = self.plan(container, detach=True)
            self.started.append(plan.name)
            podman(*plan.args)
        return self

    def container(self, name: str) -> dict:
        return next(c for c in self.spec["containers"] if c["name"] == name)

    def running(self, container: dict) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", f"{self.name}-{container['name']}", check=False)
        return state.stdout.strip() == "true"

    def logs(self, container: dict) -> str:
        result = podman("logs", f"{self.name}-{container['name']}", check=False)
        return result.stdout + result.stderr

    def probe(self, container: dict, probe: dict) -> ProbeResult:
        """Perform a probe as the kubelet does (httpGet: 200-399 is success)."""
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = container_port(container, get["port"])
            url = f"{get.get('scheme', 'HTTP').lower()}://{get.get('host', '127.0.0.1')}:{port}{get.get('path', '/')}"
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            try:
                answer = httpx.get(url, headers=headers, timeout=timeout, follow_redirects=False)
            except httpx.HTTPError as exc:
                return ProbeResult(False, f"GET {url}: {exc!r}")
            return ProbeResult(200 <= answer.status_code < 400, f"GET {url}: {answer.status_code}")
        if "tcpSocket" in probe:
            port = container_port(container, probe["tcpSocket"]["port"])
            with socket.socket() as sock:
                sock.settimeout(timeout)
                ok = sock.connect_ex(("127.0.0.1", port)) == 0
            return ProbeResult(ok, f"tcp 127.0.0.1:{port}: {'open' if ok else 'refused'}")
        if "exec" in probe:
            result = podman("exec", f"{self.name}-{container['name']}", *probe["exec"]["command"], check=False)
            return ProbeResult(result.returncode == 0, f"exec exit {result.returncode}")
        raise PodSpecError(f"unsupported probe {sorted(probe)}")

    def wait_ready(self, timeout: float = 120) -> dict[str, list[ProbeResult]]:
        """Wait until every container's startup, liveness and readiness probes pass,
        the startup probe first, as the kubelet orders them; a container that exits fails at once."""
        passed: dict[str, list[ProbeResult]] = {}
        for container in self.spec["containers"]:
            results = []
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind)
                if not probe:
                    continue

                def passes(container=container, probe=probe):
                    if not self.running(container):
                        raise StackError(f"{container['name']} exited:\n{self.logs(container)[-3000:]}")
                    result = self.probe(container, probe)
                    return result if result.ok else None

                try:
                    results.append(wait_until(passes, timeout, f"{container['name']} {kind}", interval=0.25))
                except TimeoutError as exc:
                    last = self.probe(container, probe) if self.running(container) else None
                    raise PodSpecError(f"{container['name']} {kind} never passed ({last.detail if last else 'exited'}):"
                                       f" {exc}\n{self.logs(container)[-3000:]}") from None
            passed[container["name"]] = results
        return passed

    def stop(self) -> None:
        for name in reversed(self.started):
            podman("rm", "-f", "-t", "5", name, check=False)
        self.started.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Pod":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

