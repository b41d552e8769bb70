"""Bad LoadTests are stopped twice: by the CRD's schema at ``kubectl apply``, and
(for what a schema cannot say, or objects that got past it) by the operator,
with a clear status and an Event instead of an error loop."""
from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from operators.loadtest import metrics
from operators.loadtest.spec import SpecError, parse
from tests.operator.cluster import PodScript
from tests.operator.support import BASIC_SPEC, apply, load_test, objects, wait_status
from devstack import wait_until

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "charts" / "monitoring" / "crds"
EXAMPLES = sorted((REPO / "operators" / "examples").glob("*.yaml"))


def _schema(crd_file: str) -> dict:
    crd = yaml.safe_load((CRDS / crd_file).read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


LOADTEST_SCHEMA = _schema("loadtests.perf.aiblog.dev.yaml")
RESULT_SCHEMA = _schema("loadtestresults.perf.aiblog.dev.yaml")


def _errors(document: dict) -> list[str]:
    # OpenAPI v3.0 schemas use draft-4 style booleans for exclusiveMinimum.
    validator = jsonschema.Draft4Validator(LOADTEST_SCHEMA)
    return [error.message for error in validator.iter_errors(document)]


def _structural_problems(node: dict, path: str = "") -> list[str]:
    """Kubernetes' structural-schema rules that a typo would break: every field typed."""
    problems = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string") and \
            not node.get("x-kubernetes-preserve-unknown-fields") and path:
        problems.append(f"{path} has no type")
    for name, child in (node.get("properties") or {}).items():
        problems += _structural_problems(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _structural_problems(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _structural_problems(node["additionalProperties"], f"{path}{{}}")
    for branch in node.get("oneOf", []):  # structural: only value checks inside oneOf
        assert set(branch) <= {"required"}, f"{path}: oneOf branch {branch} declares more than required fields"
    return problems


@pytest.mark.parametrize("schema", [LOADTEST_SCHEMA, RESULT_SCHEMA], ids=["LoadTest", "LoadTestResult"])
def test_the_crd_schemas_are_structural(schema):
    assert _structural_problems(schema) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_the_examples_pass_the_crd_schema_and_the_operator(example):
    document = yaml.safe_load(example.read_text())
    assert _errors(document) == []
    parse(document["spec"], "default")  # no SpecError


BAD = [
    ({"users": 0}, "0 is less than the minimum of 1"),
    ({"workers": 501}, "501 is greater than the maximum of 500"),
    ({"duration": 86401}, "86401 is greater than the maximum of 86400"),
    ({"duration": "5m"}, "'5m' is not of type 'integer'"),
    ({"spawnRate": 0}, "0 is less than or equal to the minimum of 0"),
    ({"target": {"url": "ftp://blog"}}, "does not match"),
    ({"target": {"url": "http://blog:8000", "service": {"name": "blog", "port": 8000}}}, "is valid under each of"),
    ({"target": {"service": {"name": "blog", "port": 70000}}}, "70000 is greater than the maximum of 65535"),
    ({"thresholds": {"maxErrorRate": 1.5}}, "1.5 is greater than the maximum of 1"),
    ({"schedule": "every night"}, "does not match"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "does not match"),
    ({"scenario": {"configMap": {"name": "s", "key": "scenario.sh"}}}, "does not match"),
    ({"scenario": {"configMap": {"key": "a.py"}}}, "'name' is a required property"),
    ({"accountsSecret": {"key": "accounts"}}, "'name' is a required property"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[str(c) for c, _ in BAD])
def test_the_crd_schema_rejects_nonsense(change, message):
    document = load_test("bad", **change)
    assert any(message in error for error in _errors(document)), _errors(document)


CEL_BAD = [
    ({"accounts": 5, "accountsSecret": {"name": "perf-accounts"}}, "give accounts (accounts to create) or "
                                                                   "accountsSecret (existing ones), not both"),
    ({"scenario": {"thinkTime": {"min": 5, "max": 1}}}, "scenario.thinkTime.max is smaller than"),
]


@pytest.mark.parametrize("change, message", CEL_BAD, ids=["accounts-and-secret", "think-time-backwards"])
def test_the_crds_rules_refuse_at_apply_what_can_never_run(change, message):
    from tests.operator.support import cel_refusals
    (refusal,) = cel_refusals(load_test("bad", **change), LOADTEST_SCHEMA)
    assert refusal.startswith(message)


def test_the_crds_rules_let_every_example_and_a_valid_spec_through():
    from tests.operator.support import cel_refusals
    documents = [yaml.safe_load(example.read_text()) for example in EXAMPLES]
    documents.append(load_test("ok", accounts=5, scenario={"thinkTime": {"min": 1, "max": 1.5}}))
    assert [cel_refusals(d, LOADTEST_SCHEMA) for d in documents] == [[]] * len(documents)


def test_the_crd_schema_requires_a_target_and_users_and_a_duration_or_a_profile():
    document = load_test("bad")
    del document["spec"]["target"]
    assert "'target' is a required property" in _errors(document)
    from tests.operator.support import cel_refusals, crd_schema
    spec_schema = crd_schema("loadtests.perf.aiblog.dev.yaml")["properties"]["spec"]
    for field in ("users", "duration"):
        document = load_test("bad")
        del document["spec"][field]
        assert "give users and duration, or profile (which sets both), not both" in cel_refusals(
            document["spec"], spec_schema)


HANDLER_BAD = [
    ({"schedule": "61 * * * *"}, "spec.schedule: '61 * * * *' is not a valid cron expression"),
    ({"scenario": {"thinkTime": {"min": 5, "max": 1}}}, "thinkTime: max (1) is smaller than min (5)"),
    ({"scenario": {"weights": {"home": 0, "post": 0, "login": 0, "write": 0, "ai": 0}}}, "at least one task"),
    ({"scenario": {"weights": {"checkout": 3}}}, "unknown task(s) checkout"),
    ({"users": "many"}, "spec.users must be a whole number"),
    ({"target": {}}, "spec.target needs exactly one of url"),
    ({"scenario": {"configMap": {"name": "Bad_Name"}}}, "spec.scenario.configMap.name must be a ConfigMap name"),
    ({"accounts": 5, "accountsSecret": {"name": "perf-accounts"}}, "spec.accounts (accounts to create) or "
                                                                   "spec.accountsSecret (existing ones), not both"),
    ({"accountsSecret": {"name": "Perf_Accounts"}}, "spec.accountsSecret.name must be a Secret name"),
    ({"accountsSecret": {"name": "perf-accounts", "key": "a/b"}}, "spec.accountsSecret.key must be a Secret key"),
]


@pytest.mark.parametrize("change, message", HANDLER_BAD, ids=[str(c) for c, _ in HANDLER_BAD])
def test_what_a_schema_cannot_say_the_operator_refuses_with_a_clear_message(change, message):
    spec = {**copy.deepcopy(BASIC_SPEC), **change}
    with pytest.raises(SpecError) as refused:
        parse(spec, "ns")
    assert message in str(refused.value)


def test_an_invalid_load_test_is_rejected_with_an_event_then_runs_once_fixed(cluster):
    from tests.operator.support import patch_spec
    apply(cluster, load_test("typo", schedule="61 * * * *"))
    final = wait_status(cluster, "typo", "the spec is refused", phase="Rejected", verdict="Rejected")
    assert final["message"] == "invalid spec: spec.schedule: '61 * * * *' is not a valid cron expression"
    assert any(c["reason"] == "InvalidSpec" and c["status"] == "False" for c in final["conditions"])
    events = wait_until(lambda: [e for e in objects(cluster, "events").values() if e.get("reason") == "InvalidSpec"],
                        what="an InvalidSpec event")
    passes = metrics.RECONCILE_PASSES._value.get()
    wait_until(lambda: metrics.RECONCILE_PASSES._value.get() >= passes + 5, what="five more reconcile passes")
    assert len(events) == 1 and not objects(cluster, "jobs")
    refusals = [e for e in objects(cluster, "events").values() if e.get("reason") == "InvalidSpec"]
    assert len(refusals) == 1  # said once, not on every pass; nothing started
    cluster.cluster.scripts["master"] = PodScript(forever=True)
    patch_spec(cluster, "typo", {"schedule": None})
    wait_status(cluster, "typo", "the fixed test runs", phase="Running", currentRun="typo-1")
    assert len([e for e in objects(cluster, "events").values() if e.get("reason") == "InvalidSpec"]) == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_the_examples_target_the_blog_charts_service_and_its_http_port(example):
    from urllib.parse import urlparse

    from tests.support.charts import BLOG_CHART, NAMESPACE as BLOG_NAMESPACE, render
    service = render(BLOG_CHART).named("Service", "aiblog")  # release "aiblog", as docs/kubernetes.md installs it
    http_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    target = yaml.safe_load(example.read_text())["spec"]["target"]
    if "service" in target:
        assert (target["service"]["name"], target["service"]["port"]) == ("aiblog", http_port)
    else:
        url = urlparse(target["url"])
        assert url.hostname == f"aiblog.{BLOG_NAMESPACE}.svc.cluster.local" and (url.port or 80) == http_port


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_example_runs_under_the_default_policy_or_names_the_setting_it_needs(example):
    """A ``# policy: {...}`` line is what the cluster admin must set (operator.policy)."""
    import json
    import re

    from operators.loadtest.policy import Policy
    from operators.loadtest.spec import parse
    text = example.read_text()
    needs = re.search(r"^# policy: (\{.*\})$", text, re.M)
    spec = parse(yaml.safe_load(text)["spec"], "blog")
    default_problem = Policy().problem(spec, spec.image or "runner", "runner")
    if needs is None:
        assert default_problem is None
    else:
        assert default_problem is not None, "the example says it needs a setting it does not need"
        assert Policy.from_json(needs.group(1)).problem(spec, spec.image or "runner", "runner") is None
        for setting in json.loads(needs.group(1)):
            assert setting in default_problem or len(json.loads(needs.group(1))) > 1, default_problem


def test_the_crds_are_valid_kubernetes_objects():
    import kubernetes_validate
    from tests.support.charts import KUBERNETES_VERSION
    for crd in sorted(CRDS.glob("*.yaml")):
        kubernetes_validate.validate(yaml.safe_load(crd.read_text()), KUBERNETES_VERSION, strict=True)


def test_a_field_the_crd_lacks_is_caught_as_the_api_server_would_prune_it():
    from tests.operator.support import assert_fits_crd
    document = load_test("extra", workers=1)
    document["status"] = {"phase": "Running", "progress": "50%"}
    with pytest.raises(AssertionError, match="progress"):
        assert_fits_crd(document, "loadtests.perf.aiblog.dev.yaml")
