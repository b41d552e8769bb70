"""Restarts, edits, deletion, schedules and history: the operator keeps its
state in the cluster, so none of them loses or doubles a run."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubernetes import client

from devstack import wait_until
from tests.operator.cluster import NAMESPACE, PodScript
from tests.operator.support import (GROUP, VERSION, apply, load_test, objects, patch_spec, runner_log, status,
                                    summary_document, wait_status)


class FakeClock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def set(self, text: str) -> None:
        self.moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _finishing_master(cluster, **figures) -> None:
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(**figures)), run_seconds=0.2)


def test_a_restart_mid_run_adopts_the_run_and_a_spec_edit_waits_for_the_next_run(cluster):
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    cluster.cluster.scripts["worker"] = PodScript(forever=True)
    apply(cluster, load_test("steady", workers=2))
    wait_status(cluster, "steady", "the run is Running", phase="Running")
    cluster.restart_operator()
    patch_spec(cluster, "steady", {"users": 99})
    running = wait_until(lambda: next((c for c in status(cluster, "steady").get("conditions", [])
                                       if c["type"] == "SpecChanged"), None),
                         what="the restarted operator reports the edit")
    assert running["reason"] == "SpecChangedDuringRun" and "applies to the next run" in running["message"]
    assert set(objects(cluster, "jobs")) == {"steady-1-master", "steady-1-worker"}  # nothing created twice
    assert len(objects(cluster, "services")) == 1 and len(objects(cluster, "pods")) == 3
    assert status(cluster, "steady")["currentRun"] == "steady-1"
    # The run ends; the edited spec then runs once, with the new figures.
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document()), run_seconds=0)
    wait_until(lambda: "steady-1" in objects(cluster, "loadtestresults"), what="run 1's result")
    second = wait_status(cluster, "steady", "the edit runs", currentRun="steady-2")
    assert second["observedGeneration"] == 2
    args = objects(cluster, "jobs")["steady-2-master"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--users") + 1] == "99"
    assert list(objects(cluster, "loadtestresults")) == ["steady-1"]


def test_deleting_a_load_test_deletes_its_runs_and_history(cluster):
    _finishing_master(cluster)
    apply(cluster, load_test("shortlived", workers=1))
    wait_status(cluster, "shortlived", "the run is collected", phase="Succeeded")
    assert objects(cluster, "loadtestresults") and objects(cluster, "configmaps") and objects(cluster, "jobs")
    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, "loadtests", "shortlived")
    kinds = ("loadtests", "jobs", "pods", "services", "loadtestresults", "configmaps")
    try:
        wait_until(lambda: not any(objects(cluster, kind) for kind in kinds), what="everything of the test is gone")
    except TimeoutError:
        left = {kind: {name: obj["metadata"] for name, obj in objects(cluster, kind).items()} for kind in kinds}
        raise AssertionError(f"left after the deletion: {left}") from None


def test_finished_jobs_go_after_their_ttl_and_results_stay(cluster):
    _finishing_master(cluster)
    apply(cluster, load_test("tidy", workers=1, ttlSecondsAfterFinished=0))
    wait_status(cluster, "tidy", "the run is collected", phase="Succeeded")
    wait_until(lambda: not objects(cluster, "jobs") and not objects(cluster, "services")
               and not objects(cluster, "pods"), what="the finished run's Jobs, Service and pods are removed")
    assert list(objects(cluster, "loadtestresults")) == ["tidy-1"] and objects(cluster, "configmaps")


def test_a_schedule_runs_on_time_skips_a_slot_while_busy_and_keeps_the_last_results(cluster, operator_config):
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
    operator_config.clock = clock
    _finishing_master(cluster)
    apply(cluster, load_test("every5", schedule="*/5 * * * *", historyLimit=2))
    wait_status(cluster, "every5", "the first slot is planned", nextScheduleTime="2030-01-01T00:05:00Z")
    assert not objects(cluster, "jobs") and status(cluster, "every5")["phase"] == "Scheduled"
    for number, moment in enumerate(["00:05:01", "00:10:02", "00:15:03"], start=1):
        clock.set(f"2030-01-01T{moment}")
        done = wait_status(cluster, "every5", f"run {number} is collected", lastResult=f"every5-{number}",
                           phase="Succeeded")
        assert done["lastScheduleTime"] == f"2030-01-01T00:{5 * number:02d}:00Z"
    assert sorted(objects(cluster, "loadtestresults")) == ["every5-2", "every5-3"]  # historyLimit 2
    # A run still going blocks the next slot (concurrencyPolicy: Forbid).
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    clock.set("2030-01-01T00:20:00")
    wait_status(cluster, "every5", "run 4 runs", currentRun="every5-4", phase="Running")
    clock.set("2030-01-01T00:25:01")  # run 3 ended 598 s ago: its Jobs stay (TTL 600 s)
    wait_status(cluster, "every5", "the busy slot is skipped", nextScheduleTime="2030-01-01T00:30:00Z")
    assert status(cluster, "every5")["currentRun"] == "every5-4" and status(cluster, "every5")["runs"] == 4
    events = wait_until(lambda: [e for e in objects(cluster, "events").values()
                                 if e.get("reason") == "ScheduleSkipped"], what="a ScheduleSkipped event")
    assert "every5-4 is still going" in events[0]["message"]
    # Finished Jobs of earlier runs went after the default TTL (600 s) of the test's clock.
    wait_until(lambda: sorted(objects(cluster, "jobs")) == ["every5-3-master", "every5-4-master"],
               what="runs 1 and 2's Jobs removed 600 s after they finished")


def test_a_suspended_schedule_starts_nothing(cluster, operator_config):
    operator_config.clock = FakeClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
    apply(cluster, load_test("paused", schedule="* * * * *", suspend=True))
    apply(cluster, load_test("witness"))  # a reconcile pass of another test proves the operator is awake
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    wait_status(cluster, "witness", "the witness runs", phase="Running")
    operator_config.clock.moment += timedelta(minutes=5)
    wait_status(cluster, "witness", "the witness is still followed", phase="Running")
    assert not any(name.startswith("paused") for name in objects(cluster, "jobs"))
    assert "runs" not in status(cluster, "paused")
