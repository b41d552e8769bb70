"""The blog chart under GitOps (Argo CD, Flux, `helm template` in CI) and across
uninstall/reinstall: generated Secrets are kept, nothing random reaches a checksum,
the GitOps mode renders nothing random at all, and `lookup` (against kmock's API
emulator) keeps every generated value across upgrades and reinstalls."""
from __future__ import annotations

import base64

import helm_python
import pytest

from tests.support.charts import BLOG_CHART, parse, render, render_error, render_manifests
from tests.support.lookup_cluster import LookupCluster

pytestmark = pytest.mark.charts

GITOPS = {"generateSecrets": False, "secretKey": {"existingSecret": "blog-secret-key"},
          "postgresql": {"auth": {"existingSecret": "blog-postgresql"}},
          "redis": {"auth": {"existingSecret": "blog-redis"}}}
CHECKSUMS = ("checksum/config", "checksum/secret")


def pod_annotations(manifests: dict[str, str], name: str = "aiblog") -> dict:
    deployment = parse(manifests).named("Deployment", name)
    return deployment["spec"]["template"]["metadata"]["annotations"]


def generated_data(manifests: dict[str, str]) -> dict[str, dict]:
    return {s["metadata"]["name"]: s["data"] for s in parse(manifests).of_kind("Secret")}


@pytest.fixture
def cluster():
    with LookupCluster() as emulated:
        yield emulated


def test_every_generated_secret_survives_helm_uninstall():
    secrets = render().of_kind("Secret")
    assert {s["metadata"]["name"] for s in secrets} == {"aiblog", "aiblog-postgresql", "aiblog-redis"}
    for secret in secrets:
        assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}, secret["metadata"]["name"]


def test_gitops_mode_renders_byte_identical_twice_and_nothing_random():
    first, second = render_manifests(BLOG_CHART, GITOPS), render_manifests(BLOG_CHART, GITOPS)
    assert first == second
    objects = parse(first)
    assert objects.of_kind("Secret") == []
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
           for e in objects.named("Deployment", "aiblog")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"SECRET_KEY": "blog-secret-key", "DATABASE_PASSWORD": "blog-postgresql",
                   "REDIS_PASSWORD": "blog-redis"}


def test_generated_values_never_reach_the_checksums():
    """Offline renders differ only in the generated Secrets' data: the pods' checksums stay put."""
    first, second = render_manifests(BLOG_CHART), render_manifests(BLOG_CHART)
    for name in ("aiblog", "aiblog-worker"):
        assert {k: pod_annotations(first, name)[k] for k in CHECKSUMS} == \
               {k: pod_annotations(second, name)[k] for k in CHECKSUMS}
    differing = [path for path in first if first[path] != second[path]]
    assert differing == ["blog/templates/secret.yaml"]
    # the check can fail: a reference to another Secret changes the checksum
    other = render_manifests(BLOG_CHART, {"redis": {"auth": {"existingSecret": "other"}}})
    assert pod_annotations(other)["checksum/secret"] != pod_annotations(first)["checksum/secret"]


@pytest.mark.parametrize("values, missing", [
    ({"generateSecrets": False}, ["/secretKey/existingSecret", "/postgresql/auth/existingSecret",
                                  "/redis/auth/existingSecret"]),
    ({**GITOPS, "redis": {"auth": {"existingSecret": ""}}}, ["/redis/auth/existingSecret"]),
], ids=["nothing-named", "redis-unnamed"])
def test_gitops_mode_refuses_a_missing_existing_secret(values, missing):
    error = render_error(BLOG_CHART, values)
    for path in missing:
        assert f"at '{path}': minLength: got 0, want 1" in error, error
    assert error.count("minLength") == len(missing), error


def test_gitops_mode_needs_no_secret_for_what_runs_outside_the_release():
    values = {"generateSecrets": False, "secretKey": {"existingSecret": "blog-secret-key"},
              "postgresql": {"enabled": False},
              "externalDatabase": {"host": "db", "existingSecret": "blog-database"},
              "redis": {"enabled": False}, "worker": {"enabled": False}}
    assert render(BLOG_CHART, values).of_kind("Secret") == []


def test_lookup_keeps_every_generated_value_across_an_upgrade(cluster):
    """The first install's Secrets in the cluster: the upgrade renders the same data, the
    same checksums (no roll), and two upgrades render byte-identical manifests."""
    install = render_manifests(BLOG_CHART)
    for secret in parse(install).of_kind("Secret"):
        cluster.put(secret)
    upgrade = cluster.render(BLOG_CHART, upgrade=True)
    assert generated_data(upgrade) == generated_data(install)
    assert pod_annotations(upgrade)["checksum/secret"] == pod_annotations(install)["checksum/secret"]
    assert cluster.render(BLOG_CHART, upgrade=True) == upgrade
    # the check can fail: an empty cluster gets new random values
    with LookupCluster() as empty:
        assert generated_data(empty.render(BLOG_CHART)) != generated_data(install)


def test_a_reinstall_adopts_the_secrets_the_uninstall_kept(cluster):
    """helm uninstall leaves the kept Secrets (and the retained Postgres volume): a new install
    of the same release reads the same password, so it matches the data on the volume."""
    cluster.put_secret("aiblog-postgresql", password="the-first-password")
    cluster.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-aiblog-postgresql-0"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}})
    reinstall = cluster.render(BLOG_CHART)
    password = generated_data(reinstall)["aiblog-postgresql"]["password"]
    assert base64.b64decode(password).decode() == "the-first-password"


def test_a_volume_without_its_secret_is_refused_with_what_to_do(cluster):
    cluster.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-aiblog-postgresql-0"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}})
    with pytest.raises(helm_python.HelmError) as refused:
        cluster.render(BLOG_CHART)
    message = str(refused.value)
    assert "the Postgres volume data-aiblog-postgresql-0 exists but its password Secret aiblog-postgresql is gone" \
        in message, message
    assert "kubectl -n blog create secret generic aiblog-postgresql --from-literal=password=" in message


def test_a_rotated_existing_secret_rolls_the_pods_at_the_next_upgrade(cluster):
    for name in ("blog-secret-key", "blog-postgresql", "blog-redis"):
        cluster.put_secret(name, **{"secret-key" if name == "blog-secret-key" else "password": "one"})
    before = cluster.render(BLOG_CHART, GITOPS, upgrade=True)
    assert cluster.render(BLOG_CHART, GITOPS, upgrade=True) == before
    cluster.put_secret("blog-redis", password="two")
    after = cluster.render(BLOG_CHART, GITOPS, upgrade=True)
    assert pod_annotations(after)["checksum/secret"] != pod_annotations(before)["checksum/secret"]
    assert pod_annotations(after)["checksum/config"] == pod_annotations(before)["checksum/config"]
