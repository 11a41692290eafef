"""Reading the deployment artefacts in tests: charts (source and rendered), Terraform, workflows.

Rendering uses Helm's own Go SDK through ``helm_python`` (package helm-python-sdk), so a rendered
manifest is what ``helm template`` prints; tests that need it skip where the wheel is missing.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import hcl2
import pytest
import yaml

from contacts_infra.settings import EnvSettings, env_name

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "deploy" / "helm"
TERRAFORM = ROOT / "deploy" / "terraform"
WORKFLOWS = ROOT / ".github" / "workflows"
CHARTS = ("command-api", "query-api", "contact-worker")
API_CHARTS = ("command-api", "query-api")
SERVICES = ROOT / "services"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged onto ``base``, maps key by key, as Helm merges values files."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def chart_values(chart: str, override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values Helm validates and renders with: values.yaml with ``override`` merged in."""
    return merged(load_yaml(HELM / chart / "values.yaml"), override or {})


def values_files(chart: str) -> list[Path]:
    """values.yaml and every ci/*-values.yaml of ``chart``."""
    return [HELM / chart / "values.yaml", *sorted((HELM / chart / "ci").glob("*-values.yaml"))]


@functools.cache
def _built_charts() -> Path:
    """A copy of deploy/helm with each chart's library dependency built (helm dependency build)."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the charts")
    target = Path(tempfile.mkdtemp(prefix="charts-")) / "helm"
    shutil.copytree(HELM, target, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    for chart in CHARTS:
        helm.dependency_build(str(target / chart))
    return target


def render(chart: str, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifests ``helm template <chart> -n contacts`` prints for ``values`` (with hooks)."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the charts")
    with helm.Chart.load(str(_built_charts() / chart)) as loaded:
        files = loaded.render(dict(values or {}), name=chart, namespace="contacts")
    return [
        doc
        for name, text in sorted(files.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def lint(chart: str, values_file: Path | None = None) -> list[str]:
    """Errors of ``helm lint`` on the chart (with ``values_file`` when given)."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk lints the charts")
    built = _built_charts() / chart
    if values_file is None:
        return list(helm.lint(str(built), strict=True)["errors"])
    return list(helm.lint(str(built), load_yaml(values_file) or {}, strict=True)["errors"])


def kinds(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m.get("kind") == kind]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment and Job."""
    for manifest in manifests:
        if manifest.get("kind") in {"Deployment", "Job"}:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals and block labels and adds
    ``__comments__``/``__is_block__``; give plain values, as Terraform sees them."""
    if isinstance(value, dict):
        return {
            _unquote(key): _unquote(item)
            for key, item in value.items()
            if key not in {"__comments__", "__is_block__"}
        }
    if isinstance(value, list):
        return [_unquote(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_hcl(path: Path) -> dict[str, Any]:
    """A .tf or .tfvars file as python-hcl2 parses it, quotes and comment markers removed."""
    with path.open() as handle:
        return _unquote(hcl2.load(handle))


def blocks(parsed: Mapping[str, Any], kind: str, type_: str) -> dict[str, Any]:
    """``resource``/``data`` blocks of one type, by name, from python-hcl2's parse."""
    found: dict[str, Any] = {}
    for entry in parsed.get(kind, []):
        for name, body in entry.get(type_, {}).items():
            found[name] = body
    return found


def settings_env_names(model: type[EnvSettings]) -> set[str]:
    """The environment variable names a settings class reads: every field's variable
    (``contacts_infra.settings.env_name``), those of nested settings classes included."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, EnvSettings):
            names |= settings_env_names(nested)
        else:
            names.add(env_name(name, field))
    return names


def module_env_names(path: Path) -> set[str]:
    """Names read with ``os.environ.get("NAME", ...)`` anywhere in a module (gunicorn config)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and ast.unparse(node.func.value) == "os.environ"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


#: Everything the charts' alerts and dashboards need, on: ``metrics.prometheusRule`` and
#: ``metrics.dashboard``.
MONITORING_ON: Final = {
    "metrics": {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}
}
#: PromQL words that are not metric names.
_PROMQL_WORDS: Final = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)


def rule_groups(chart: str, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rule groups of the PrometheusRule ``chart`` renders with its monitoring on (the
    ``groups`` of a Prometheus rules file)."""
    manifests = render(chart, merged(MONITORING_ON, values or {}))
    [rule] = kinds(manifests, "PrometheusRule")
    return list(rule["spec"]["groups"])


def dashboard(chart: str) -> dict[str, Any]:
    """The Grafana dashboard (JSON) of the ConfigMap ``chart`` renders with monitoring on."""
    maps = [
        m
        for m in kinds(render(chart, MONITORING_ON), "ConfigMap")
        if m["metadata"]["name"].endswith("-dashboard")
    ]
    [config_map] = maps
    [text] = config_map["data"].values()
    return dict(json.loads(text))


def dashboard_exprs(chart: str) -> list[str]:
    return [t["expr"] for p in dashboard(chart)["panels"] for t in p["targets"]]


def rule_exprs(chart: str) -> list[str]:
    return [str(r["expr"]) for g in rule_groups(chart) for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers left once label matchers,
    ranges, strings, numbers, function calls and keywords are removed."""
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following != "(" and match.group(0).lower() not in _PROMQL_WORDS:
            names.add(match.group(0))
    return names


def promtool() -> str:
    """Path of Debian's ``promtool`` (package ``prometheus``). Without it a test fails under
    CI (``CI=true``: ``.ci/run`` installs it) and skips, saying so, elsewhere."""
    return _prometheus_binary("promtool")


def prometheus_binary() -> str:
    """Path of Debian's ``prometheus`` server binary (see ``promtool``)."""
    return _prometheus_binary("prometheus")


def _prometheus_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is missing: apt-get install prometheus (Debian), as .ci/run does"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
