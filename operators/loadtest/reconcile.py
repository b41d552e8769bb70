"""One reconcile pass over a LoadTest: start a run when one is due, follow the
running one, collect its figures when it ends, tidy what has expired.

Everything the pass needs is in the LoadTest's status and the run's labelled
children, and every child has a name fixed by the run's number, so a pass
repeated after a restart finds what exists and creates nothing twice.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from perfcontract.run_summary import (TAIL_BYTES, TAIL_LINES, LogSummaryError, parse_report,
                                   parse_summary)

from . import baselines, disruptions, history, manifests, metrics, names, pods, results, schedule
from .config import OperatorConfig
from .kube import Cluster
from .status import api_answer, condition
from .spec import LoadTestSpec, SpecError, parse

TRANSIENT_STATUSES = (429, 500, 502, 503, 504)  # the API server busy or restarting: worth another pass
COLLECT_ATTEMPTS = 5  # passes that may meet a transient error while collecting before the run fails
START_ATTEMPTS = 3  # passes that may meet an API refusal while creating a run's children before it fails


@dataclass
class Pass:
    """One reconcile pass over one LoadTest."""
    body: dict
    cluster: Cluster
    config: OperatorConfig
    post_event: callable  # (body, type, reason, message)

    def __post_init__(self):
        meta = self.body["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]
        self.generation = meta.get("generation")
        self.status = dict(self.body.get("status") or {})
        self.now = self.config.clock.now()

    # -- helpers ------------------------------------------------------------------
    def patch(self, **changes) -> None:
        self.cluster.patch_status(self.namespace, self.name, changes)
        self.status.update(changes)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.post_event(self.body, kind, reason, message)

    # -- the pass -------------------------------------------------------------------
    def run(self) -> None:
        try:
            spec = parse(self.body.get("spec"), self.namespace)
        except SpecError as exc:
            self.reject("InvalidSpec", f"invalid spec: {exc}")
            return
        image = spec.image or self.config.default_image
        if not image:
            self.reject("InvalidSpec", "invalid spec: spec.image is empty and the operator has no default "
                                       "(LOADTEST_RUNNER_IMAGE)")
            return
        if self.status.get("currentRun"):
            self.follow(spec)  # a policy changed mid-run applies from the next run
        else:
            problem = self.config.policy.problem(spec, image, self.config.default_image)
            if problem:
                self.reject("PolicyRejected", f"rejected by the cluster's policy: {problem}")
                return
            self.maybe_start(spec, image)
        history.remove_expired_jobs(self.cluster, self.namespace, self.name, self.status.get("currentRun"),
                                    self.now, spec.ttl_seconds_after_finished)

    def reject(self, reason: str, message: str) -> None:
        """The spec cannot run here: Rejected (nothing is created), said once. Complete too, with the
        verdict as its reason, so that `kubectl wait --for=condition=Complete` returns on it."""
        if self.status.get("phase") == "Rejected" and self.status.get("message") == message:
            return  # said once; a refused spec is not an error loop
        ready = condition(self.status, "Ready", False, reason, message, self.now)
        self.patch(phase="Rejected", verdict="Rejected", message=message, observedGeneration=self.generation,
                   nextScheduleTime=None,
                   conditions=condition({"conditions": ready}, "Complete", True, "Rejected", message, self.now))
        self.event("Warning", reason, message)

    # -- starting ---------------------------------------------------------------------
    def maybe_start(self, spec: LoadTestSpec, image: str) -> None:
        if spec.suspend:
            return
        if spec.schedule:
            due = schedule.parse_iso(self.status.get("nextScheduleTime"))
            if due is None:
                self.patch(phase=self.status.get("phase") or "Scheduled",
                           nextScheduleTime=schedule.iso(schedule.next_after(spec.schedule, self.now)))
                return
            if self.now < due:
                return
            self.start(spec, image, lastScheduleTime=schedule.iso(due),
                       nextScheduleTime=schedule.iso(schedule.next_after(spec.schedule, self.now)))
            return
        ran_this_spec = self.status.get("runs") and self.status.get("observedGeneration") == self.generation
        if not ran_this_spec:  # a plain LoadTest runs once per spec; editing the spec runs it again
            self.start(spec, image)

    def start(self, spec: LoadTestSpec, image: str, **status) -> None:
        problem = self.config.policy.objects_problem(
            spec, lambda kind, name: self.cluster.labels_of(self.namespace, kind, name))
        if problem:  # checked at every start: the labels may have changed since the apply
            self.reject("PolicyRejected", f"rejected by the cluster's policy: {problem}")
            return
        found = self.baseline(spec, {})
        if found is not None and found.problem:  # a named baseline that is not there: no run to waste
            self.reject("BaselineMissing", f"spec.compare: {found.problem}")
            return
        number = int(self.status.get("runs") or 0) + 1
        run = names.run_name(self.name, number)
        if not self.create_children(spec, image, run, number, found):
            return
        load = (f"users {spec.profile.steps.start} to {spec.profile.steps.end} by {spec.profile.steps.step}, "
                f"{spec.profile.steps.seconds:g} s a step") if spec.profile else \
            f"{spec.users} users for {spec.duration} s"
        message = f"run {run} started: {load}" + (
            f" on {spec.workers} workers" if spec.workers else "")
        self.patch(phase="Pending", verdict=None, currentRun=run, runs=number, startTime=schedule.iso(self.now), faults=None,
                   finishTime=None, startAttempts=None, observedGeneration=self.generation, message=message,
                   conditions=condition({"conditions": [c for c in self.status.get("conditions") or []
                                                         if c.get("type") != "SpecChanged"]},
                                         "Complete", False, "RunStarted", message, self.now), **status)
        metrics.RUNS_STARTED.inc()
        self.event("Normal", "RunStarted", message)

    def create_children(self, spec: LoadTestSpec, image: str, run: str, number: int,
                        found: baselines.Baseline | None) -> bool:
        """Create the run's children; False when the API refused them for good (the run is then Failed)."""
        master_job = None
        try:
            for child in manifests.run_children(self.name, run, spec, image, self.config.workers_max_wait_s,
                                                self.target_peer(spec), secrets.token_urlsafe(32),
                                                self.config.scrapers,
                                                baselines.runner_args(found, spec.compare) if found else ()):
                if child["kind"] == "Secret":
                    manifests.owned_by_job(child, master_job)
                else:
                    kopf.adopt(child, owner=self.body)
                created = self.cluster.create(self.namespace, child)
                if child["metadata"]["name"] == names.master_job_name(run) and child["kind"] == "Job":
                    master_job = created
        except ApiException as exc:
            attempts = int(self.status.get("startAttempts") or 0) + 1
            if attempts < START_ATTEMPTS:  # a quota may free up, the API server may come back
                self.patch(startAttempts=attempts)
                raise
            self.start_failed(run, number, exc, attempts)
            return False
        return True

    def start_failed(self, run: str, number: int, exc: ApiException, attempts: int) -> None:
        """The API refused the run's children (a quota, a name, a limit): the run ends here, not in a loop."""
        for job in self.cluster.jobs(self.namespace, run=run):
            self.cluster.delete(self.namespace, "Job", job["metadata"]["name"])
        text = f"run {run} could not start after {attempts} attempts: {api_answer(exc)}"
        self.patch(phase="Failed", verdict=results.FAILED, currentRun=None, runs=number, startAttempts=None,
                   startTime=schedule.iso(self.now), finishTime=schedule.iso(self.now),
                   observedGeneration=self.generation, message=text,
                   conditions=condition(self.status, "Complete", True, "CreateFailed", text, self.now))
        metrics.RUNS_FINISHED.labels(verdict=results.FAILED, phase="Failed").inc()
        self.event("Warning", "CreateFailed", text)

    def baseline(self, spec: LoadTestSpec, record: dict) -> baselines.Baseline | None:
        """spec.compare's baseline as the API has it now (``record``: the run's summary, once it has one)."""
        if spec.compare is None:
            return None
        return baselines.find(self.cluster, self.namespace, self.name, spec.compare,
                              results.parameters(record, spec), results.target(record, spec))

    def target_peer(self, spec: LoadTestSpec) -> dict:
        """The target for the run's NetworkPolicy: the Service's pods and port, or a URL's port."""
        if spec.target_service is None:
            parsed = urlsplit(spec.target_url)
            return {"port": parsed.port or (443 if parsed.scheme == "https" else 80)}
        return self.cluster.service_peer(self.namespace, spec.target_service, urlsplit(spec.target_url).port)

    # -- following --------------------------------------------------------------------
    def follow(self, spec: LoadTestSpec) -> None:
        run = self.status["currentRun"]
        self.report_spec_change(run)
        self.skip_missed_slot(spec)
        jobs = {(j["metadata"].get("labels") or {}).get(names.ROLE_LABEL): j
                for j in self.cluster.jobs(self.namespace, run=run)}
        if "master" not in jobs:  # stopped between the status and the Jobs: finish creating them
            self.create_children(spec, spec.image or self.config.default_image, run, int(self.status["runs"]),
                                 self.baseline(spec, {}))
            return
        run_pods = self.cluster.pods(self.namespace, run=run)
        stuck = pods.stuck(run_pods, self.now, self.config.stuck_grace_s)
        if stuck:
            for job in jobs.values():
                self.cluster.delete(self.namespace, "Job", job["metadata"]["name"])
            self.fail(run, "PodStuck", f"{stuck} for more than {self.config.stuck_grace_s:g} s")
            return
        if spec.faults:
            self.apply_faults(spec, run_pods)
        # The Job, or its runner container when a mesh's sidecar keeps the pod (and Job) running.
        ended = pods.job_finished(jobs["master"]) or pods.runner_finished(run_pods, names.ROLE_LABEL,
                                                                          manifests.MASTER_CONTAINER)
        if ended is None:
            phase = "Running" if pods.running(run_pods) else "Pending"
            if self.status.get("phase") != phase:
                self.patch(phase=phase)
            return
        try:
            self.collect(spec, run, ended, run_pods, jobs)
        except Exception as exc:  # noqa: BLE001 - whatever a hostile log or the API does, the run ends
            self.collect_failed(run, exc, jobs)

    def apply_faults(self, spec: LoadTestSpec, run_pods: list[dict]) -> None:
        """Apply the faults that are due (disruptions.py), each recorded before its evictions."""
        applied = [dict(entry) for entry in self.status.get("faults") or []]
        started = pods.runner_started(run_pods, names.ROLE_LABEL, manifests.MASTER_CONTAINER)
        for index in disruptions.due(spec.faults, applied, started, self.now):
            fault = spec.faults[index]
            chosen = disruptions.targets(self.cluster.pods_matching(self.namespace, fault.labels), fault.count)
            applied.append({"index": index, "afterSeconds": fault.after_seconds, "appliedAt": schedule.iso(self.now),
                            "pods": chosen, "outcome": "being applied"})
            self.patch(faults=applied)  # first: a restarted operator never applies it twice
            applied[-1] = {**applied[-1], "outcome": disruptions.evict(self.cluster, self.namespace, chosen)}
            self.patch(faults=applied)
            self.event("Normal", "FaultApplied", f"fault {index} at {fault.after_seconds} s: {applied[-1]['outcome']}")

    def collect_failed(self, run: str, exc: Exception, jobs: dict) -> None:
        """A transient API error gets a few more passes; anything else (a
        malformed log, a result the API refuses) ends the run as Failed, so the
        run is never collected again and again."""
        status = getattr(exc, "status", None)
        transient = status in TRANSIENT_STATUSES or (status is None and isinstance(exc, (OSError, HTTPError)))
        attempts = int(self.status.get("collectAttempts") or 0) + 1
        if transient and attempts < COLLECT_ATTEMPTS:
            self.patch(collectAttempts=attempts)
            raise exc
        if status is not None:
            problem = f"{api_answer(exc)} (while keeping its results)"
        else:
            problem = f"its figures could not be collected: {type(exc).__name__}: {str(exc)[:300]}"
        self.fail(run, "CollectFailed", problem + (f" (after {attempts} attempts)" if transient else ""), jobs)

    def report_spec_change(self, run: str) -> None:
        observed = self.status.get("observedGeneration")
        if self.generation is None or observed is None or observed == self.generation:
            return
        if any(c.get("type") == "SpecChanged" for c in self.status.get("conditions") or []):
            return
        message = f"the spec changed while run {run} is going; the change applies to the next run"
        self.patch(conditions=condition(self.status, "SpecChanged", True, "SpecChangedDuringRun", message,
                                         self.now))
        self.event("Normal", "SpecChangedDuringRun", message)

    def skip_missed_slot(self, spec: LoadTestSpec) -> None:
        due = schedule.parse_iso(self.status.get("nextScheduleTime"))
        if spec.schedule and due and self.now >= due:  # like a CronJob's concurrencyPolicy: Forbid
            self.patch(nextScheduleTime=schedule.iso(schedule.next_after(spec.schedule, self.now)))
            self.event("Normal", "ScheduleSkipped",
                       f"run due at {schedule.iso(due)} skipped: run {self.status['currentRun']} is still going")

    # -- ending -------------------------------------------------------------------------
    def collect(self, spec: LoadTestSpec, run: str, ended: str, run_pods: list[dict], jobs: dict) -> None:
        masters = [p for p in run_pods if (p["metadata"].get("labels") or {}).get(names.ROLE_LABEL) == "master"]
        masters.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        log = self.cluster.pod_log(self.namespace, masters[-1]["metadata"]["name"], manifests.MASTER_CONTAINER,
                                   tail_lines=TAIL_LINES, limit_bytes=TAIL_BYTES) if masters else ""
        try:
            record = parse_summary(log)
        except LogSummaryError as exc:
            # The log's own words stay in the log: a runner may print what its pod can read (a mounted
            # Secret), and a LoadTest's status and Events are readable by more people than pods/log.
            self.fail(run, "NoSummary", f"the master Job ended as {ended} without figures: {exc}; see kubectl "
                      f"logs -n {self.namespace} job/{names.master_job_name(run)} -c {manifests.MASTER_CONTAINER}",
                      jobs)
            return
        if record.get("error"):
            reason = "WorkersNotConnected" if "workers never connected" in record["error"] else "RunnerError"
            self.fail(run, reason, record["error"][:300], jobs)
            return
        verdict = results.judge(record.get("summary"), spec, self.baseline(spec, record),
                                timeline=record.get("timeline"), applied=self.status.get("faults"))
        number = int(self.status.get("runs") or 0)
        html = parse_report(log)
        budget = self.config.policy.max_report_bytes
        room = budget - history.report_bytes_kept(self.cluster, self.namespace, self.name, spec.history_limit) \
            if html is not None else 0
        report, kept = results.report_entry(run, html, budget, room, spec.report_claim)
        result_spec = results.result_spec(self.name, run, record, spec, verdict, report)
        result = manifests.load_test_result(self.name, run, number, result_spec)
        kopf.adopt(result, owner=self.body)
        stored = self.cluster.create(self.namespace, result)
        if kept:
            configmap = manifests.report_configmap(self.name, run, html)
            kopf.adopt(configmap, owner=stored)  # the report goes with its result
            self.cluster.create(self.namespace, configmap)
        history.trim(self.cluster, self.namespace, self.name, spec.history_limit)
        phase = "Failed" if verdict.target_unreachable else "Succeeded"
        summary = f"run {run}: {verdict.verdict}" + (f" ({'; '.join(verdict.reasons)})" if verdict.reasons else "")
        self.mark_finished(jobs)
        self.patch(phase=phase, verdict=verdict.verdict, currentRun=None, lastResult=run, collectAttempts=None,
                   finishTime=schedule.iso(self.now), latest=results.headline(result_spec), message=summary,
                   conditions=condition(self.status, "Complete", True,
                                         "TargetUnreachable" if verdict.target_unreachable else verdict.verdict,
                                         summary, self.now))
        metrics.RUNS_FINISHED.labels(verdict=verdict.verdict, phase=phase).inc()
        self.event("Normal" if verdict.verdict == results.PASSED else "Warning", f"Run{verdict.verdict}", summary)

    def fail(self, run: str, reason: str, message: str, jobs: dict | None = None) -> None:
        self.mark_finished(jobs or {})
        text = f"run {run} failed: {message}"
        self.patch(phase="Failed", verdict=results.FAILED, currentRun=None, finishTime=schedule.iso(self.now),
                   collectAttempts=None, message=text, conditions=condition(self.status, "Complete", True, reason, text, self.now))
        metrics.RUNS_FINISHED.labels(verdict=results.FAILED, phase="Failed").inc()
        self.event("Warning", reason, text)

    def mark_finished(self, jobs: dict) -> None:
        """Mark the run's Jobs for ``ttlSecondsAfterFinished`` (history.remove_expired_jobs;
        a Job a sidecar holds open goes at once there)."""
        for job in jobs.values():
            self.cluster.annotate_job(self.namespace, job["metadata"]["name"],
                                      {names.FINISHED_ANNOTATION: schedule.iso(self.now)})
