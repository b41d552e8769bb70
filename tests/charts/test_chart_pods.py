"""The rendered pods run: charts/blog rendered with the image under test and an
external Postgres and Redis on loopback, then its blog and worker PodSpecs run
under podman as the kubelet would (tests/support/podspec.py): the migrations
init container, the server and the worker with the rendered command, env
(Secret and ConfigMap references resolved), user, read-only root, tmpfs
emptyDirs and dropped capabilities. Each rendered probe must pass and the
home page must answer; wrong values must make it fail."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import httpx
import pytest

from devstack import Postgres, Redis, free_port
from tests.support.charts import BLOG_CHART, Render, pod_spec, render
from tests.support.podspec import Cluster, Pod, PodSpecError, plan_container

pytestmark = [pytest.mark.charts, pytest.mark.postgres, pytest.mark.slow]

# Characters that break a URL unless config.py percent-encodes the password.
DATABASE_PASSWORD = "p@ss:w/rd#1?"
REDIS_PASSWORD = "r@dis:pa/ss"


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.fixture(scope="module")
def backing_services():
    workdir = Path(tempfile.mkdtemp(prefix="aiblog-pods-"))
    postgres = Postgres(workdir).start()
    redis = Redis(workdir, password=REDIS_PASSWORD).start()  # AUTH required
    yield postgres, redis
    redis.stop()
    postgres.stop()


def pod_values(image_tag: str, postgres, redis, **overrides) -> dict:
    repository, tag = image_tag.rsplit(":", 1)
    port = free_port()
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "web": {"port": port, "metricsPort": free_port(),
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}},
        # kube-proxy is not emulated: the Service port equals the pod's, so `helm test` reaches it.
        "service": {"port": port},
        "worker": {"metricsPort": free_port()},
        "postgresql": {"enabled": False},
        "externalDatabase": {"host": "127.0.0.1", "port": postgres.port, "database": "aiblog", "user": "postgres",
                             "existingSecret": "blog-database"},
        "redis": {"enabled": False},
        "externalRedis": {"host": "127.0.0.1", "port": redis.port, "existingSecret": "blog-redis"},
        "ollama": {"enabled": False},
        "llm": {"mode": "sim"},
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value}
    return values


def cluster_for(objects: Render) -> Cluster:
    """The render's objects plus the Secrets an operator would have created beforehand."""
    return Cluster(objects.objects + [secret("blog-database", password=DATABASE_PASSWORD),
                                      secret("blog-redis", password=REDIS_PASSWORD)])


@pytest.fixture(scope="module")
def running_blog(aiblog_image, backing_services):
    postgres, redis = backing_services
    values = pod_values(aiblog_image.tag, postgres, redis)
    objects = render(BLOG_CHART, values)
    cluster = cluster_for(objects)
    web = Pod("aiblog-web-0", pod_spec(objects.named("Deployment", "aiblog")), cluster, namespace="blog")
    worker = Pod("aiblog-worker-0", pod_spec(objects.named("Deployment", "aiblog-worker")), cluster, namespace="blog")
    try:
        web.start()
        web_probes = web.wait_ready(timeout=120)
        worker.start()
        worker_probes = worker.wait_ready(timeout=60)
        yield {"values": values, "objects": objects, "web": web, "worker": worker,
               "probes": {**web_probes, **worker_probes}}
    finally:
        worker.stop()
        web.stop()


def test_every_rendered_probe_passes(running_blog):
    probes = running_blog["probes"]
    port = running_blog["values"]["web"]["port"]
    assert [r.detail for r in probes["blog"]] == [f"GET http://127.0.0.1:{port}/healthz: 200",
                                                    f"GET http://127.0.0.1:{port}/readyz: 200",
                                                    f"GET http://127.0.0.1:{port}/healthz: 200"]
    worker_port = running_blog["values"]["worker"]["metricsPort"]
    assert [r.detail for r in probes["worker"]] == [f"GET http://127.0.0.1:{worker_port}/metrics: 200"] * 2


def test_the_home_page_answers_and_readyz_saw_database_and_redis(running_blog):
    port = running_blog["values"]["web"]["port"]
    service = {"Host": f"aiblog.blog.svc.cluster.local:{port}"}  # one of the chart's TRUSTED_HOSTS
    home = httpx.get(f"http://127.0.0.1:{port}/", headers=service, timeout=10)
    assert home.status_code == 200 and "<html" in home.text.lower()
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", headers=service, timeout=10).json()
    assert "database" in str(ready) and "redis" in str(ready), ready


@pytest.mark.parametrize("path", ["/post//6", "/", "/api//v1/posts"])
def test_a_made_up_host_gets_400_from_the_rendered_pod_and_no_redirect(running_blog, path):
    port = running_blog["values"]["web"]["port"]
    answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "evil.example"}, timeout=10)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert ("application/json" if "/api" in path else "text/html") in answer.headers["content-type"]


def test_a_probe_without_its_host_header_is_what_trusted_hosts_refuses(running_blog):
    """Why the chart's probes name the Service: the kubelet's default Host is the pod's address."""
    web = running_blog["web"]
    container = web.container("blog")
    probe = {**container["readinessProbe"], "httpGet": {**container["readinessProbe"]["httpGet"],
                                                         "host": "127.0.0.2", "httpHeaders": []}}
    result = web.probe(container, probe)
    assert not result.ok and result.detail.endswith(": 400"), result


def test_metrics_are_served_on_the_metrics_port_only(running_blog):
    values = running_blog["values"]["web"]
    assert httpx.get(f"http://127.0.0.1:{values['metricsPort']}/metrics", timeout=10).status_code == 200
    public = httpx.get(f"http://127.0.0.1:{values['port']}/metrics", headers={"Host": "aiblog"}, timeout=10)
    assert public.status_code == 404


def test_the_migrations_ran_in_the_init_container(running_blog, backing_services):
    import psycopg2

    postgres, _ = backing_services
    with psycopg2.connect(postgres.url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT version_num FROM alembic_version")
        assert cursor.fetchone()[0]


def test_the_pods_ran_locked_down_as_rendered(running_blog):
    web = running_blog["web"]
    plan = web.plan(web.container("blog"), detach=True)
    for flag in ("--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "no-new-privileges"):
        assert flag in plan.args
    assert plan.args[plan.args.index("--user") + 1] == "10001:10001"
    assert plan.env["DATABASE_PASSWORD"] == DATABASE_PASSWORD and plan.env["REDIS_PASSWORD"] == REDIS_PASSWORD
    from tests.support.container import podman

    users = podman("top", "aiblog-web-0-blog", "huser", "args").stdout.splitlines()[1:]  # numeric: no such host user
    assert users and all(line.split()[0] == "10001" for line in users), users
    write = podman("exec", "aiblog-web-0-blog", "sh", "-c", "touch /opt/x", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_a_wrong_probe_path_in_values_fails_the_probe(running_blog):
    """The same running pod, probed as a render with a misspelt path would probe it."""
    values = running_blog["values"]
    wrong = render(BLOG_CHART, {**values, "probes": {"readiness": {"path": "/ready", "periodSeconds": 5,
                                                                   "failureThreshold": 2, "timeoutSeconds": 2}}})
    container = pod_spec(wrong.named("Deployment", "aiblog"))["containers"][0]
    result = running_blog["web"].probe(container, container["readinessProbe"])
    assert not result.ok and result.detail.endswith(": 404"), result


def test_a_wrong_database_port_fails_the_migrations(aiblog_image, backing_services):
    postgres, redis = backing_services
    values = pod_values(aiblog_image.tag, postgres, redis, externalDatabase={"port": free_port()})
    objects = render(BLOG_CHART, values)
    with Pod("aiblog-wrongdb-0", pod_spec(objects.named("Deployment", "aiblog")), cluster_for(objects)) as pod:
        with pytest.raises(PodSpecError, match="migrate exited"):
            pod.run_init_containers(timeout=120)


def test_a_wrong_secret_key_name_is_refused_like_the_kubelet_does(aiblog_image, backing_services, tmp_path):
    postgres, redis = backing_services
    values = pod_values(aiblog_image.tag, postgres, redis, externalDatabase={"existingSecretPasswordKey": "pasword"})
    objects = render(BLOG_CHART, values)
    spec = pod_spec(objects.named("Deployment", "aiblog"))
    with pytest.raises(PodSpecError, match="CreateContainerConfigError: key 'pasword'"):
        plan_container(spec, spec["containers"][0], cluster_for(objects), "x", "blog", tmp_path, detach=True)


def test_the_helm_test_pod_passes_against_the_running_blog(running_blog):
    """`helm test`: the chart's test pod (the blog's image) fetches /readyz through the Service's name."""
    objects = running_blog["objects"]
    (test_pod,) = objects.of_kind("Pod")
    with Pod("aiblog-test-readyz", test_pod["spec"], cluster_for(objects), hosts={"aiblog": "127.0.0.1"}) as pod:
        output = pod.run_to_completion(test_pod["spec"]["containers"][0], timeout=60)
    port = running_blog["values"]["web"]["port"]
    assert f"http://aiblog:{port}/readyz 200" in output, output


def test_image_digest_runs_exactly_the_built_image(running_blog, aiblog_image):
    """image.digest as values.yaml says to find it (`podman inspect --format '{{.Digest}}'`):
    the rendered repository@digest runs, here as the helm test pod against the running blog."""
    from tests.support.container import podman

    digest = podman("inspect", "--format", "{{.Digest}}", aiblog_image.tag).stdout.strip()
    values = {**running_blog["values"], "image": {**running_blog["values"]["image"], "digest": digest}}
    objects = render(BLOG_CHART, values)
    (test_pod,) = objects.of_kind("Pod")
    container = test_pod["spec"]["containers"][0]
    assert container["image"] == f"{aiblog_image.tag.rsplit(':', 1)[0]}@{digest}"
    with Pod("aiblog-test-digest", test_pod["spec"], cluster_for(objects), hosts={"aiblog": "127.0.0.1"}) as pod:
        output = pod.run_to_completion(container, timeout=60)
    assert f"http://aiblog:{values['web']['port']}/readyz 200" in output, output


def test_extra_env_volumes_and_objects_reach_the_running_blog(aiblog_image, backing_services):
    """web.extraEnv/extraEnvFrom/extraVolumes/extraVolumeMounts with a ConfigMap from extraObjects,
    run as the kubelet would: the variables and the mounted file are there, the pod is ready."""
    postgres, redis = backing_services
    values = pod_values(aiblog_image.tag, postgres, redis, web={
        "extraEnv": [{"name": "EXTRA_NOTE", "value": "from extraEnv"}],
        "extraEnvFrom": [{"secretRef": {"name": "blog-extra"}}],
        "extraVolumes": [{"name": "extra-ca", "configMap": {"name": "aiblog-extra-ca"}}],
        "extraVolumeMounts": [{"name": "extra-ca", "mountPath": "/etc/ssl/extra", "readOnly": True}]})
    values["extraObjects"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "{{ .Release.Name }}-extra-ca"}, "data": {"ca.pem": "a bundle"}}]
    objects = render(BLOG_CHART, values)
    cluster = Cluster(cluster_for(objects).objects + [secret("blog-extra", EXTRA_SECRET="from extraEnvFrom")])
    with Pod("aiblog-extra-0", pod_spec(objects.named("Deployment", "aiblog")), cluster, namespace="blog") as pod:
        pod.start()
        pod.wait_ready(timeout=120)
        from tests.support.container import podman

        shown = podman("exec", "aiblog-extra-0-blog", "sh", "-c",
                       'echo "$EXTRA_NOTE|$EXTRA_SECRET|$(cat /etc/ssl/extra/ca.pem)"').stdout.strip()
    assert shown == "from extraEnv|from extraEnvFrom|a bundle"


def test_the_ai_pool_pod_runs_as_rendered_and_serves_ai_writing(aiblog_image, backing_services):
    """The AI pool's Deployment (aiPool), run as the kubelet would: every probe passes, its own
    worker count reaches gunicorn, and it answers the AI paths under its own Service's name."""
    postgres, redis = backing_services
    values = pod_values(aiblog_image.tag, postgres, redis,
                        aiPool={"resources": {"limits": {"cpu": "1", "memory": "352Mi"}}})
    objects = render(BLOG_CHART, values)
    port = values["web"]["port"]
    with Pod("aiblog-ai-0", pod_spec(objects.named("Deployment", "aiblog-ai")), cluster_for(objects),
             namespace="blog") as pod:
        pod.start()
        probes = pod.wait_ready(timeout=120)
        from tests.support.container import podman

        workers = podman("exec", "aiblog-ai-0-blog", "sh", "-c", "echo $WEB_CONCURRENCY").stdout.strip()
        service = {"Host": f"aiblog-ai.blog.svc:{port}"}  # the AI pool's Service is one of TRUSTED_HOSTS
        form = httpx.get(f"http://127.0.0.1:{port}/generate-blog", headers=service, timeout=10)
        api = httpx.post(f"http://127.0.0.1:{port}/api/v1/generate", headers=service, json={"title": "x"}, timeout=10)
    assert [r.ok for r in probes["blog"]] == [True, True, True]
    assert workers == "1"
    assert form.status_code == 302 and "/login" in form.headers["location"]  # AI writing needs a login
    assert api.status_code == 401 and api.headers["content-type"].startswith("application/json")


def test_the_expand_contract_check_waits_for_a_second_migration():
    """Three migrations: tests/test_blog_migrations.py runs the previous head's app (its
    code from git, the commit before the newest migration: for the third, the app
    without credentials versions) against the upgraded schema, on SQLite and Postgres.
    When a fourth lands, this fails: make sure that test still covers it (a contract
    step, dropping what old pods use, needs its own release)."""
    versions = Path(__file__).resolve().parents[2] / "service" / "aiblog" / "migrations" / "versions"
    assert len(list(versions.glob("*.py"))) == 3
