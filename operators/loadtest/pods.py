"""Reading the state of a run's pods and Jobs (plain dicts, as the API returns them)."""
from __future__ import annotations

from datetime import datetime

from .schedule import parse_iso

# Waiting reasons that do not end by themselves: past the grace period the run is Failed.
STUCK_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError"}


def _since(pod: dict, condition: dict | None) -> datetime | None:
    return parse_iso((condition or {}).get("lastTransitionTime")) or parse_iso(
        (pod.get("status") or {}).get("startTime")) or parse_iso((pod.get("metadata") or {}).get("creationTimestamp"))


def stuck(pods: list[dict], now: datetime, grace_s: float) -> str | None:
    """Why a pod of the run has been stuck longer than ``grace_s``, or None."""
    for pod in pods:
        status = pod.get("status") or {}
        name = (pod.get("metadata") or {}).get("name")
        unscheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"
                            and c.get("status") == "False" and c.get("reason") == "Unschedulable"), None)
        if unscheduled:
            since = _since(pod, unscheduled)
            if since and (now - since).total_seconds() > grace_s:
                return f"pod {name} is unschedulable: {unscheduled.get('message') or 'no node fits it'}"
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                since = _since(pod, None)
                if since and (now - since).total_seconds() > grace_s:
                    detail = f": {waiting['message']}" if waiting.get("message") else ""
                    return f"pod {name} container {container.get('name')} is in {waiting['reason']}{detail}"
    return None


def running(pods: list[dict]) -> bool:
    return any((p.get("status") or {}).get("phase") == "Running" for p in pods)


def _container_state(pod: dict, container: str) -> dict:
    """The ``state`` the pod's status gives its container ``container`` ({} when it gives none)."""
    return next(((s.get("state") or {}) for s in (pod.get("status") or {}).get("containerStatuses") or []
                 if s.get("name") == container), {})


def _newest_master(run_pods: list[dict], role_label: str) -> dict | None:
    masters = [p for p in run_pods if ((p.get("metadata") or {}).get("labels") or {}).get(role_label) == "master"]
    return max(masters, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "") if masters else None


def runner_started(run_pods: list[dict], role_label: str, container: str) -> datetime | None:
    """When the newest master pod's runner ``container`` started running (the run's
    load begins then; a fault's afterSeconds count from it), or None before."""
    newest = _newest_master(run_pods, role_label)
    return parse_iso(_container_state(newest, container).get("running", {}).get("startedAt")) if newest else None


def runner_finished(run_pods: list[dict], role_label: str, container: str) -> str | None:
    """'Complete' or 'Failed (...)' once the newest master pod's runner
    ``container`` has terminated, whatever its other containers do: a mesh's
    classic sidecar runs on, so the pod and its Job never finish by themselves."""
    newest = _newest_master(run_pods, role_label)
    if newest is None:
        return None
    terminated = _container_state(newest, container).get("terminated")
    if not terminated:
        return None
    code = terminated.get("exitCode")
    return "Complete" if code == 0 else f"Failed (the runner exited with {code})"


def held_by_sidecar(job: dict, run_pods: list[dict]) -> bool:
    """The Job's pods all run on although their runner container (the first) has
    terminated: a mesh's classic sidecar holds them, and the Job never completes."""
    name = (job.get("metadata") or {}).get("name")
    mine = [p for p in run_pods if ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == name]
    if not mine:
        return False
    for pod in mine:
        runner = (((pod.get("spec") or {}).get("containers") or [{}])[0]).get("name")
        if (pod.get("status") or {}).get("phase") != "Running" or "terminated" not in _container_state(pod, runner):
            return False
    return True


def job_finished(job: dict | None) -> str | None:
    """'Complete' or 'Failed' (with the Job controller's reason) when the Job has ended, else None."""
    if not job:
        return None
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            reason = condition.get("reason")
            return condition["type"] + (f" ({reason})" if reason and condition["type"] == "Failed" else "")
    return None
