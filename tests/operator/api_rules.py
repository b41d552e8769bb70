"""What the API server refuses when the operator creates a run's children,
which kmock 0.8 accepts as it comes: names of the wrong form or length,
invalid label values, requests above their limits, oversized objects, and
LoadTestResults outside their CRD's schema. Without these the tests of the
operator's naming and error handling would pass whatever it sent."""
from __future__ import annotations

import json
import re

from operators.loadtest.spec import quantity

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ETCD_LIMIT = 1_572_864  # bytes: etcd's request limit (the API server answers 500 "request is too large")
# kind: (pattern, longest name). A Job's name becomes its pods' job-name label, so 63.
NAME_RULES = {"services": (DNS_1035_LABEL, 63), "jobs": (DNS_1123_SUBDOMAIN, 63),
              "configmaps": (DNS_1123_SUBDOMAIN, 253), "secrets": (DNS_1123_SUBDOMAIN, 253),
              "networkpolicies": (DNS_1123_SUBDOMAIN, 253), "loadtestresults": (DNS_1123_SUBDOMAIN, 253)}
CHECKED = set(NAME_RULES)


def refusal(plural: str, obj: dict, result_schema: dict | None = None) -> tuple[int, str, str] | None:
    """(status, reason, message) as the API server would refuse ``obj``, or None."""
    if plural not in CHECKED or not isinstance(obj, dict):
        return None
    size = len(json.dumps(obj))
    if size > ETCD_LIMIT:
        return 500, "InternalError", "etcdserver: request is too large"
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", plural)
    pattern, longest = NAME_RULES[plural]
    name = meta.get("name") or ""
    if len(name) > longest or not pattern.match(name):
        return 422, "Invalid", (f'{kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": must be '
                                f"no more than {longest} characters of the form {pattern.pattern}")
    problem = _labels_problem(meta.get("labels"), "metadata.labels")
    if problem is None and plural == "jobs":
        template = (obj.get("spec") or {}).get("template") or {}
        problem = _labels_problem((template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels")
        for container in (template.get("spec") or {}).get("containers") or []:
            problem = problem or _resources_problem(container)
    if problem is None and plural == "loadtestresults" and result_schema is not None:
        import jsonschema
        errors = sorted(jsonschema.Draft4Validator(result_schema).iter_errors(obj), key=str)
        if errors:
            problem = f"{'.'.join(map(str, errors[0].absolute_path))}: {errors[0].message}"
    if problem:
        return 422, "Invalid", f'{kind} "{name}" is invalid: {problem}'
    return None


def _labels_problem(labels, where: str) -> str | None:
    for key, value in (labels or {}).items():
        prefix, _, short = key.rpartition("/")
        if (prefix and not DNS_1123_SUBDOMAIN.match(prefix)) or not short or len(short) > 63 or \
                not LABEL_VALUE.match(short):
            return f"{where}: Invalid value: {key!r}: a label key"
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            return f"{where}: Invalid value: {value!r}: a valid label must be 63 characters or less " \
                   "and begin and end with an alphanumeric character"
    return None


def _resources_problem(container: dict) -> str | None:
    resources = container.get("resources") or {}
    for name, asked in (resources.get("requests") or {}).items():
        limit = (resources.get("limits") or {}).get(name)
        if limit is not None and quantity(asked) > quantity(limit):
            return (f"spec.template.spec.containers[{container.get('name')}].resources.requests: Invalid value: "
                    f'"{asked}": must be less than or equal to {name} limit of {limit}')
    return None
