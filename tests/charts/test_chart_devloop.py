"""The developer loop cannot run here (no kind, no cluster): every file, value and
name that skaffold.yaml, kind-config.yaml, the dev values and the README's
"Deploy with Helm" / "Run on kind" commands mention must exist and render."""
from __future__ import annotations

import re
import shlex

import helm_python
import pytest
import yaml

from aiblog import config
from tests.charts.test_chart_render import validate
from tests.support.charts import BLOG_CHART, MONITORING_CHART, Render, merged, render
from devstack import REPO

pytestmark = pytest.mark.charts

SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
KIND = yaml.safe_load((REPO / "kind-config.yaml").read_text())
# The README and the page its Kubernetes sections moved to: the commands a user runs.
README = (REPO / "README.md").read_text() + "\n" + (REPO / "docs" / "kubernetes.md").read_text()
KIND_SECTION = README.split("## Run on kind\n", 1)[1].split("\n## ", 1)[0]
GRAFANA_SERVICE = "{release}-grafana"  # kube-prometheus-stack's Grafana subchart names its Service and Secret so


def readme_commands(section: str) -> list[list[str]]:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def option(args: list[str], *names: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in names]


def helm_install(args: list[str]) -> tuple[str, str, str, dict]:
    """`helm install NAME CHART -n NS -f FILE --set K=V` as (release, chart, namespace, values)."""
    release, chart = args[2], args[3]
    values: dict = {}
    for values_file in option(args, "-f", "--values"):
        assert (REPO / values_file).is_file(), values_file
        values = merged(values, yaml.safe_load((REPO / values_file).read_text()))
    for expression in option(args, "--set"):
        values = merged(values, helm_python.parse_set_string(expression))
    return release, chart, option(args, "-n", "--namespace")[0], values


def installs(section: str) -> dict[str, Render]:
    found = {}
    for args in readme_commands(section):
        if args[:2] == ["helm", "install"]:
            release, chart, namespace, values = helm_install(args)
            assert (REPO / chart / "Chart.yaml").is_file(), chart
            found[release] = render(REPO / chart, values, name=release, namespace=namespace)
    return found


def image_templates(image: str) -> tuple[str, str]:
    """skaffold's template variables for an artifact's repository and tag."""
    variable = re.sub(r"[^A-Za-z0-9]", "_", image)
    return f"{{{{.IMAGE_REPO_{variable}}}}}", f"{{{{.IMAGE_TAG_{variable}}}}}"


def test_skaffold_builds_the_images_the_charts_run():
    assert re.fullmatch(r"skaffold/v4beta\d+", SKAFFOLD["apiVersion"])
    blog_artifact, operator_artifact = SKAFFOLD["build"]["artifacts"]
    dockerfile = (REPO / "service/Dockerfile").read_text()
    for artifact in (blog_artifact, operator_artifact):
        assert (REPO / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    assert f"AS {operator_artifact['docker']['target']}\n" in dockerfile
    blog_values = yaml.safe_load((BLOG_CHART / "values.yaml").read_text())
    operator_values = yaml.safe_load((MONITORING_CHART / "values.yaml").read_text())["operator"]
    assert blog_artifact["image"] == blog_values["image"]["repository"] == operator_values["runnerImage"]["repository"]
    assert operator_artifact["image"] == operator_values["image"]["repository"]
    releases = {r["chartPath"]: r for r in SKAFFOLD["deploy"]["helm"]["releases"]}
    blog_repo, blog_tag = image_templates(blog_artifact["image"])
    operator_repo, operator_tag = image_templates(operator_artifact["image"])
    assert releases["charts/blog"]["setValueTemplates"] == {"image.repository": blog_repo, "image.tag": blog_tag}
    assert releases["charts/monitoring"]["setValueTemplates"] == {
        "operator.image.repository": operator_repo, "operator.image.tag": operator_tag,
        "operator.runnerImage.repository": blog_repo, "operator.runnerImage.tag": blog_tag}


def test_the_dev_operator_watches_the_namespace_the_blog_is_installed_in():
    releases = {r["chartPath"]: r for r in SKAFFOLD["deploy"]["helm"]["releases"]}
    dev = yaml.safe_load((MONITORING_CHART / "values-dev.yaml").read_text())
    assert dev["operator"]["watchNamespaces"] == [releases["charts/blog"]["namespace"]]
    objects = render(MONITORING_CHART, dev, name="monitoring", namespace="monitoring")
    roles = [r for r in objects.of_kind("Role")]
    assert roles and {r["metadata"]["namespace"] for r in roles} == {"blog"}


def test_skaffold_releases_render_with_their_dev_values():
    releases = SKAFFOLD["deploy"]["helm"]["releases"]
    assert [r["chartPath"] for r in releases] == ["charts/monitoring", "charts/blog"], "monitoring (CRDs) first"
    renders = {}
    for release in releases:
        values: dict = {}
        for values_file in release["valuesFiles"]:
            values = merged(values, yaml.safe_load((REPO / values_file).read_text()))
        for key in release.get("setValueTemplates", {}):
            values = merged(values, helm_python.parse_set_string(f"{key}=placeholder-from-skaffold"))
        renders[release["name"]] = render(REPO / release["chartPath"], values, name=release["name"],
                                          namespace=release["namespace"])
    for forward in SKAFFOLD["portForward"]:
        if forward["namespace"] == "monitoring":
            assert forward["resourceName"] == GRAFANA_SERVICE.format(release="monitoring")
        else:
            service = renders["aiblog"].named("Service", forward["resourceName"])
            assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]


def test_kind_reaches_the_blog_through_the_dev_values_gateway():
    """cloud-provider-kind serves Gateways of its class on localhost ports: the dev values bring
    the Gateway, and the blog's HTTPRoute attaches to it for a host the blog trusts."""
    assert KIND["name"] == "aiblog" and "--name aiblog" in README
    assert "cloud-provider-kind --enable-lb-port-mapping" in README
    assert "ingress-nginx" not in KIND_SECTION.replace("ingress-nginx, which the old recipe installed", "")
    objects = render(BLOG_CHART, yaml.safe_load((BLOG_CHART / "values-dev.yaml").read_text()))
    gateway = objects.named("Gateway", "aiblog")
    assert gateway["spec"]["gatewayClassName"] == "cloud-provider-kind"
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["protocol"], listener["port"], listener["allowedRoutes"]["namespaces"]["from"]) == ("HTTP", 80, "Same")
    route = objects.named("HTTPRoute", "aiblog")["spec"]
    assert route["parentRefs"] == [{"name": "aiblog"}] and route["hostnames"] == ["localhost"]
    assert "localhost" in objects.named("ConfigMap", "aiblog")["data"]["TRUSTED_HOSTS"].split(",")
    for obj in (gateway, objects.named("HTTPRoute", "aiblog")):
        validate(obj)


def test_dev_values_turn_the_secure_cookie_off():
    dev = yaml.safe_load((BLOG_CHART / "values-dev.yaml").read_text())
    settings = dev["web"]["settings"]
    assert config.load({"SESSION_COOKIE_SECURE": settings["SESSION_COOKIE_SECURE"]})["SESSION_COOKIE_SECURE"] is False
    objects = render(BLOG_CHART, dev)
    assert objects.named("ConfigMap", "aiblog")["data"]["SESSION_COOKIE_SECURE"] == "0"


@pytest.mark.parametrize("section", ["Deploy with Helm", "Run on kind"])
def test_every_readme_command_names_files_values_and_objects_that_exist(section):
    renders = installs(section)
    assert "aiblog" in renders and "monitoring" in renders
    blog = renders["aiblog"]
    for args in readme_commands(section):
        for path in option(args, "--config") + [a for a in args if "://" not in a and (a.startswith("charts/") or a.endswith(".yaml"))]:
            assert (REPO / path).exists(), path
        if args[0] == "kubectl":
            namespace = (option(args, "-n", "--namespace") or [None])[0]
            for ref in [a for a in args if re.fullmatch(r"(deployment|deploy|service|statefulset|gateway)/[\w-]+", a)]:
                kind, name = ref.split("/")
                if namespace == "monitoring":
                    assert name == GRAFANA_SERVICE.format(release="monitoring"), ref
                    continue
                kind = {"deploy": "Deployment", "deployment": "Deployment", "service": "Service",
                        "statefulset": "StatefulSet", "gateway": "Gateway"}[kind]
                obj = blog.named(kind, name)
                for container in option(args, "-c"):
                    assert container in [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
            if "secret" in args:
                assert args[args.index("secret") + 1] == GRAFANA_SERVICE.format(release="monitoring")
        if args[:2] == ["helm", "test"]:
            assert args[2] in renders
            assert blog.of_kind("Pod"), "helm test needs the chart's test pod"


def test_a_wrong_value_in_the_readme_would_fail():
    """The check renders what the README sets: a misspelt key fails at the schema."""
    with pytest.raises(helm_python.HelmValuesError):
        render(BLOG_CHART, helm_python.parse_set_string("serviceMonitor.enable=true"))


def test_notes_name_objects_and_pages_that_exist():
    from aiblog import create_app

    objects = render(BLOG_CHART, {})
    notes = objects.notes
    for kind, name in re.findall(r"\b(service|deploy|statefulset)/([\w-]+)", notes):
        if name == GRAFANA_SERVICE.format(release="monitoring"):  # charts/monitoring's, as in the README
            continue
        kind = {"deploy": "Deployment", "service": "Service", "statefulset": "StatefulSet"}[kind]
        objects.named(kind, name)
    routes = {rule.rule for rule in create_app({"TESTING": True}).url_map.iter_rules()}
    for path in re.findall(r"register at (/\S+)", notes):
        assert path.rstrip(",") in routes, path
    assert "-c blog -- aiblog create-admin" in notes and "SESSION_COOKIE_SECURE" in notes
    # The chart runs BLOG_ENV=production, where `aiblog seed` refuses without --force.
    assert objects.named("ConfigMap", "aiblog")["data"]["BLOG_ENV"] == "production"
    for text in (notes, README):
        seeds = [line for line in text.splitlines() if "exec deploy/" in line and "aiblog seed" in line]
        assert seeds and all("aiblog seed --force" in line for line in seeds), seeds


def test_the_load_test_section_installs_the_operator_where_its_commands_look():
    """README "Run a load test in the cluster": the chart is built before it is
    installed, the operator gets a Role in the namespace the kubectl commands use,
    and the objects they name are the ones the example and the operator produce."""
    from operators.loadtest import manifests, names

    section = "Run a load test in the cluster"
    commands = readme_commands(section)
    helm = [args[:2] for args in commands if args[0] == "helm"]
    assert helm.index(["helm", "dependency"]) < helm.index(["helm", "install"])
    monitoring = installs(section)["monitoring"]
    kubectl = [args for args in commands if args[0] == "kubectl"]
    namespaces = {option(args, "-n", "--namespace")[0] for args in kubectl}
    assert {r["metadata"]["namespace"] for r in monitoring.of_kind("Role")} == namespaces == {"blog"}
    verbs = [[a for i, a in enumerate(args[1:], 1) if args[i - 1] not in ("-n", "--namespace") and a[:1] != "-"]
             for args in kubectl]  # each command without its namespace option: verb, kind, name
    (applied,) = [option(args, "-f")[0] for args, words in zip(kubectl, verbs) if words[0] == "apply"]
    example = yaml.safe_load((REPO / applied).read_text())
    test = example["metadata"]["name"]
    run = names.run_name(test, 1)
    named = {tuple(words[:3]) for words in verbs}
    assert ("describe", "loadtest", test) in named and ("get", "loadtestresult", run) in named
    assert ("get", "configmap", names.report_configmap_name(run)) in named
    assert f"jsonpath={{.data.{manifests.REPORT_KEY.replace('.', chr(92) + '.')}}}" in \
        [a for args in kubectl for a in args]
