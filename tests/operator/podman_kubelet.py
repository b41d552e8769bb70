"""A kubelet that really runs the pods the emulated Job controller makes: each
pod's PodSpec becomes ``podman run`` containers (tests/support/podspec.py: the
command, args, env, user, read-only root, dropped capabilities, emptyDir as
tmpfs, as written by the operator), on the host's network, with the image
under test. Their states and logs go back to the emulator as a kubelet reports
them. Service names the pods look up (the master's) resolve to loopback.

A container a mesh injected (``cluster.SIDECAR``, added at admission by the
fake cluster) runs too, as a process that never exits, like a classic
sidecar: the pod then stays Running after its runner container has ended."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from tests.support.podspec import Cluster, Pod, PodSpecError, podman

STATE_EVERY_S = 0.5  # `podman inspect` per pod at most this often
# What an injected sidecar runs in the image under test: nothing, forever.
SIDECAR_COMMAND = ["python", "-c", "import time\nwhile True: time.sleep(3600)"]


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PodmanKubelet:
    image: str
    hosts: dict = field(default_factory=dict)  # Service name -> address
    # The namespace's Secrets and ConfigMaps that pod volumes name (read when a pod starts).
    objects: Callable[[], list[dict]] = field(default=lambda: [])
    pods: dict = field(default_factory=dict)  # pod name -> Pod
    reported: dict = field(default_factory=dict)  # pod name -> phase last reported
    _checked: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # After stop_all no pod starts again: the emulator may still step the pods it
    # holds (a replacement pod) until its own teardown, and a container started
    # then was never removed (found running after a whole `make test`).
    _closed: bool = False

    def step(self, name: str, pod: dict) -> tuple[dict | None, str | None]:
        """Start the pod if new, else read its state: (a status to report or None, its log or None)."""
        with self._lock:
            if self._closed:
                return None, None
            if name not in self.pods:
                return self._start(name, pod), None
            if time.monotonic() - self._checked.get(name, 0) < STATE_EVERY_S:
                return None, None
            self._checked[name] = time.monotonic()
            running = self.pods[name]
            container = running.spec["containers"][0]
            state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                           f"{name}-{container['name']}", check=False).stdout.split()
            log = running.logs(container)
            if not state:
                return None, log
            status, code = state[0], int(state[1]) if len(state) > 1 else -1
            sidecars = running.spec["containers"][1:]
            if status == "running":
                phase, container_state = "Running", {"running": {"startedAt": _iso_now()}}
            elif status in ("exited", "stopped"):
                # A sidecar that never exits keeps the pod (and its Job) running.
                phase = "Running" if sidecars else ("Succeeded" if code == 0 else "Failed")
                container_state = {"terminated": {"exitCode": code, "finishedAt": _iso_now()}}
            else:
                return None, log
            seen = f"{phase}/{next(iter(container_state))}"
            if self.reported.get(name) == seen:
                return None, log
            self.reported[name] = seen
            statuses = [{"name": container["name"], "ready": "running" in container_state, "state": container_state}]
            statuses += [{"name": c["name"], "ready": True, "state": {"running": {"startedAt": _iso_now()}}}
                         for c in sidecars]
            return {"phase": phase, "containerStatuses": statuses}, log

    def _start(self, name: str, pod: dict) -> dict:
        running = Pod(name, pod["spec"], Cluster(self.objects()), namespace=pod["metadata"]["namespace"],
                      image=self.image, hosts=dict(self.hosts))
        self.pods[name] = running
        container = running.spec["containers"][0]
        try:
            plan = running.plan(container, detach=True)
            running.started.append(plan.name)
            podman(*plan.args)
            for sidecar in running.spec["containers"][1:]:
                plan = running.plan({"name": sidecar["name"], "image": self.image, "command": SIDECAR_COMMAND},
                                    detach=True)
                running.started.append(plan.name)
                podman(*plan.args)
        except PodSpecError as exc:  # what the kubelet would report as a container that cannot start
            if str(exc).startswith("CreateContainerConfigError"):
                # A Secret or ConfigMap not there yet (a run's token follows its master Job):
                # the kubelet waits and tries again, and so does this one on its next step.
                del self.pods[name]
                running.started.clear()
                return {"phase": "Pending", "containerStatuses": [{"name": container["name"], "state": {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(exc)[-300:]}}}]}
            self.reported[name] = "Failed"
            return {"phase": "Failed", "message": str(exc)[-500:], "containerStatuses": [
                {"name": container["name"], "state": {"terminated": {"exitCode": 128, "reason": "StartError"}}}]}
        return {"phase": "Pending", "startTime": _iso_now()}

    def stop(self, name: str) -> None:
        """The pod was deleted: remove its containers."""
        with self._lock:
            running = self.pods.pop(name, None)
        if running is not None:
            running.stop()

    def stop_all(self) -> None:
        with self._lock:
            self._closed = True
        for name in list(self.pods):
            self.stop(name)
