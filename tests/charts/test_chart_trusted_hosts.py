"""The chart fills TRUSTED_HOSTS so that every legitimate caller of the blog is
trusted by Werkzeug's own matcher and a made-up host is not: the probes (which send
the Service's name), the `helm test` pod, LoadTests that target the Service, and
the Ingress and HTTPRoute hosts (a wildcard becoming a suffix)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from werkzeug.sansio.utils import host_is_trusted

from aiblog.trusted_hosts import parse
from tests.support.charts import BLOG_CHART, Render, pod_spec, render, render_error

pytestmark = pytest.mark.charts


def trusted(objects: Render) -> list[str]:
    (configmap,) = [o for o in objects.of_kind("ConfigMap") if "DATABASE_URL" in (o.get("data") or {})]
    hosts = parse(configmap["data"]["TRUSTED_HOSTS"])  # the app's own reading of it
    assert hosts, "the chart always sets TRUSTED_HOSTS"
    return hosts


def test_every_legitimate_caller_is_trusted_and_a_made_up_host_is_not(blog: Render):
    hosts = trusted(blog)
    web = pod_spec(blog.named("Deployment", "aiblog"))["containers"][0]
    callers = []
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        headers = {h["name"]: h["value"] for h in web[kind]["httpGet"].get("httpHeaders") or []}
        assert "Host" in headers, f"{kind} would send the pod's address, which no list can hold"
        callers.append(headers["Host"])
    for test_pod in blog.of_kind("Pod"):
        callers.append(urlsplit(test_pod["spec"]["containers"][0]["args"][0]).netloc)
    service = blog.named("Service", "aiblog")["metadata"]["name"]
    callers += [f"{service}:80", f"{service}.blog.svc:80", f"{service}.blog.svc.cluster.local", "localhost:8080"]
    from operators.loadtest import spec as loadtest_spec  # the URL a LoadTest's runners ask

    target = loadtest_spec.parse({"target": {"service": {"name": service, "port": 80}}, "users": 1, "duration": 1},
                                 "blog").target_url
    callers.append(urlsplit(target).netloc)
    for ingress in blog.of_kind("Ingress"):
        callers += [rule["host"] for rule in ingress["spec"]["rules"]]
    for route in blog.of_kind("HTTPRoute"):
        callers += [host.replace("*.", "en.") for host in route["spec"]["hostnames"]]
    for caller in callers:
        assert host_is_trusted(caller, hosts), (caller, hosts)
    for foreign in ("evil.example", "10.244.0.7:8000", "aiblog.evil.example"):
        assert not host_is_trusted(foreign, hosts), foreign


def test_a_wildcard_ingress_host_trusts_its_subdomains_only():
    hosts = trusted(render(BLOG_CHART, {"ingress": {"enabled": True, "hosts": [
        {"host": "*.blog.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]}}))
    assert host_is_trusted("en.blog.example.com", hosts)
    assert not host_is_trusted("blog.example.com.evil.example", hosts)


def test_extra_names_and_the_cluster_domain_come_from_values():
    hosts = trusted(render(BLOG_CHART, {"clusterDomain": "corp.internal", "web": {"trustedHosts": [".example.net"]}}))
    assert "aiblog.blog.svc.corp.internal" in hosts and "localhost" not in hosts
    assert host_is_trusted("www.example.net", hosts)


def test_trusted_hosts_given_as_a_setting_replace_the_charts():
    objects = render(BLOG_CHART, {"web": {"settings": {"TRUSTED_HOSTS": "blog.example.com"}}})
    assert trusted(objects) == ["blog.example.com"]


@pytest.mark.parametrize("entry", ["blog.example.com:443", "fd00::1", "*.example.com", "Blog.example.com"])
def test_the_schema_refuses_a_name_werkzeug_cannot_match(entry):
    error = render_error(BLOG_CHART, {"web": {"trustedHosts": [entry]}})
    assert "at '/web/trustedHosts/0': " in error and "does not match pattern" in error, error
