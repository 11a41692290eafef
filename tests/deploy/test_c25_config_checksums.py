"""C25: a settings-only `helm upgrade` must roll the pods: every Deployment and Job that reads the
ConfigMap or Secret carries a checksum of the rendered config in its pod template."""

from __future__ import annotations

import re

import pytest

from support.deployment import CHARTS, HELM, kinds, render

WORKLOAD_TEMPLATES = {
    "command-api": ["deployment.yaml"],
    "query-api": ["deployment.yaml"],
    "contact-worker": [
        "deployment.yaml",
        "migrations-job.yaml",
        "change-purge-cronjob.yaml",
        "inbox-purge-cronjob.yaml",
    ],
}
CHECKSUM = re.compile(
    r"checksum/(config|secret): \{\{ include \(print \$\.Template\.BasePath "
    r"\"/(configmap|secret)\.yaml\"\) \. \| sha256sum \}\}"
)


@pytest.mark.parametrize("chart", CHARTS)
def test_c25_pod_templates_hash_the_rendered_config_and_secret(chart: str) -> None:
    for template in WORKLOAD_TEMPLATES[chart]:
        source = (HELM / chart / "templates" / template).read_text()
        found = {(m.group(1), m.group(2)) for m in CHECKSUM.finditer(source)}
        assert found == {("config", "configmap"), ("secret", "secret")}, template
        # In the pod template's metadata, not the Deployment's own.
        assert source.index("template:") < source.index("checksum/config"), template


@pytest.mark.parametrize("chart", CHARTS)
def test_c25_every_template_that_reads_the_settings_is_hashed(chart: str) -> None:
    readers = {
        path.name
        for path in (HELM / chart / "templates").glob("*.yaml")
        if re.search(r"contacts-common\.envFrom|secretKeyRef|configMapRef", path.read_text())
    }
    assert readers == set(WORKLOAD_TEMPLATES[chart])


def _annotations(chart: str, values: dict) -> dict[str, dict[str, str]]:
    manifests = kinds(render(chart, values), "Deployment") + kinds(render(chart, values), "Job")
    return {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["annotations"] for m in manifests
    }


@pytest.mark.parametrize(
    ("chart", "setting"),
    [
        ("query-api", "CONTACT_CACHE_TTL_S"),
        ("command-api", "IDEMPOTENCY_TTL_S"),
        ("contact-worker", "CONTACT_CACHE_TTL_S"),
    ],
)
def test_c25_changing_only_a_setting_changes_the_config_checksum(chart: str, setting: str) -> None:
    before = _annotations(chart, {"existingSecret": chart})
    after = _annotations(chart, {"existingSecret": chart, "config": {setting: "1234"}})
    assert before.keys() == after.keys()
    assert before
    for name in before:
        assert before[name]["checksum/config"] != after[name]["checksum/config"], name
        assert before[name]["checksum/secret"] == after[name]["checksum/secret"], name


def test_c25_changing_a_secret_in_values_changes_the_secret_checksum() -> None:
    secrets = {"DATABASE_URL": "postgresql://a", "REDIS_URL": "rediss://a"}
    before = _annotations("contact-worker", {"secrets": secrets})
    after = _annotations("contact-worker", {"secrets": {**secrets, "REDIS_URL": "rediss://b"}})
    for name in before:
        assert before[name]["checksum/secret"] != after[name]["checksum/secret"], name
