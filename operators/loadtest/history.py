"""What a LoadTest keeps of its past runs: at most ``historyLimit``
LoadTestResults, their reports' ConfigMaps within the admin's
``maxReportBytes``, and finished runs' Jobs until ``ttlSecondsAfterFinished``."""
from __future__ import annotations

from datetime import datetime

from . import schedule
from .kube import Cluster
from .names import (FINISHED_ANNOTATION, ROLE_LABEL, RUN_LABEL, RUN_NUMBER_LABEL, master_service_name,
                    network_policy_name)
from .pods import held_by_sidecar, job_finished


def _run_number(result: dict) -> int:
    number = str((result["metadata"].get("labels") or {}).get(RUN_NUMBER_LABEL) or "0")
    return int(number) if number.isdigit() and len(number) < 10 else 0  # a label anyone could have written


def results_oldest_first(cluster: Cluster, namespace: str, test: str) -> list[dict]:
    kept = cluster.results(namespace, test)
    kept.sort(key=_run_number)
    return kept


def report_bytes_kept(cluster: Cluster, namespace: str, test: str, history_limit: int) -> int:
    """Bytes of report ConfigMaps this LoadTest keeps once the next result trims its history."""
    kept = results_oldest_first(cluster, namespace, test)
    staying = kept[max(0, len(kept) - (history_limit - 1)):] if history_limit > 1 else []
    reports = [((r.get("spec") or {}).get("report") or {}) for r in staying]
    return sum(int(report.get("bytes") or 0) for report in reports if report.get("configMap"))


def trim(cluster: Cluster, namespace: str, test: str, history_limit: int) -> None:
    """Delete the oldest results beyond ``history_limit`` (their report ConfigMaps go with them)."""
    kept = results_oldest_first(cluster, namespace, test)
    for old in kept[:max(0, len(kept) - history_limit)]:
        cluster.delete(namespace, "LoadTestResult", old["metadata"]["name"])


def remove_expired_jobs(cluster: Cluster, namespace: str, test: str, current_run: str | None, now: datetime,
                        ttl_seconds: float) -> None:
    """Finished runs' Jobs (with their pods), Services and NetworkPolicies go
    after ``ttlSecondsAfterFinished``; results stay. A finished run's Job that a
    mesh's sidecar holds open (its runners are done, its pods run on) goes at once."""
    for job in cluster.jobs(namespace, test=test):
        meta = job["metadata"]
        finished = schedule.parse_iso((meta.get("annotations") or {}).get(FINISHED_ANNOTATION))
        run = (meta.get("labels") or {}).get(RUN_LABEL)
        if run == current_run or finished is None:
            continue
        if (now - finished).total_seconds() >= ttl_seconds or (
                job_finished(job) is None and held_by_sidecar(job, cluster.pods(namespace, run=run))):
            remove_job(cluster, namespace, job)


def remove_job(cluster: Cluster, namespace: str, job: dict) -> None:
    """A run's Job (its pods go with it); with the master's, the run's Service and NetworkPolicy."""
    meta = job["metadata"]
    cluster.delete(namespace, "Job", meta["name"])
    if (meta.get("labels") or {}).get(ROLE_LABEL) == "master":
        run = (meta.get("labels") or {}).get(RUN_LABEL)
        cluster.delete(namespace, "Service", master_service_name(run))
        cluster.delete(namespace, "NetworkPolicy", network_policy_name(run))
