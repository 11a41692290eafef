"""C27: non-root, read-only root filesystem, no capabilities, no privilege escalation, seccomp;
gunicorn and Celery command lines that need nothing writable but /tmp and /dev/shm. The last
tests run the images' real command lines here under a read-only root filesystem."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from support.auth import api
from support.deployment import CHARTS, HELM, ROOT, kinds, load_yaml, render
from support.processes import BIN, Service, free_port, http_ok

DOCKERFILES = {name: ROOT / "services" / name / "Dockerfile" for name in CHARTS}


def final_stage(dockerfile: Path) -> str:
    return dockerfile.read_text().rsplit("\nFROM ", 1)[1]


def image_cmd(dockerfile: Path) -> list[str]:
    match = re.search(r"^CMD (\[.*?\])\s*$", final_stage(dockerfile), re.MULTILINE | re.DOTALL)
    assert match, dockerfile
    return json.loads(match.group(1).replace("\\\n", ""))


@pytest.mark.parametrize("service", CHARTS)
def test_c27_images_run_as_non_root_without_compilers(service: str) -> None:
    text = DOCKERFILES[service].read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(
        r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}$", text, re.M
    )
    final = final_stage(DOCKERFILES[service])
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)
    assert "apt-get" not in final
    assert "gcc" not in final
    assert "pip install" not in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "HEALTHCHECK" in final
    # The libraries are installed as wheels built from the repository, not copied as files.
    assert re.search(r"pip wheel --wheel-dir /wheels (\\\s+)?\./libs/contacts-domain", text)


@pytest.mark.parametrize("service", CHARTS)
def test_c27_command_lines_need_no_writable_root(service: str) -> None:
    commands = [image_cmd(DOCKERFILES[service])]
    (deployment,) = kinds(render(service), "Deployment")
    commands.append(deployment["spec"]["template"]["spec"]["containers"][0]["command"])
    for argv in commands:
        assert not any(arg.startswith(("--pid", "-p")) for arg in argv), argv
        assert "--statedb" not in argv, argv
        assert "--logfile" not in argv, argv
        if argv[0] == "gunicorn":
            assert argv[argv.index("--worker-tmp-dir") + 1] == "/dev/shm", argv


@pytest.mark.parametrize("chart", CHARTS)
def test_c27_values_keep_the_hardened_contexts(chart: str) -> None:
    values = load_yaml(HELM / chart / "values.yaml")
    container = values["containerSecurityContext"]
    assert container["enabled"]
    assert container["readOnlyRootFilesystem"]
    assert container["runAsNonRoot"]
    assert container["runAsUser"] != 0
    assert container["allowPrivilegeEscalation"] is False
    assert container["privileged"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = values["podSecurityContext"]
    assert pod["runAsNonRoot"]
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


# Runs ARGV in a private mount namespace where every filesystem but /proc, /sys and /dev is
# read-only, /tmp is a fresh tmpfs (the emptyDir), as uid 10001 without capabilities. The
# interpreter lives under /root (mode 700), so /root/.pyenv is made reachable first.
_READ_ONLY = r"""
set -e
if [ -d /root/.pyenv ]; then
  hold=$(mktemp -d /dev/shm/c27-pyenv.XXXXXX)
  mount --bind /root/.pyenv "$hold"
  mount -t tmpfs -o mode=755,size=1m tmpfs /root
  mkdir /root/.pyenv
  mount --bind "$hold" /root/.pyenv
  umount "$hold"; rmdir "$hold"
fi
for target in $(findmnt -rno TARGET | sort -u); do
  case "$target" in
    /proc*|/sys*|/dev*) ;;
    *) mount -o remount,bind,ro "$target" 2>/dev/null || true ;;
  esac
done
repo=${C27_REPO:-}
case "$repo" in
  /tmp/*)  # the checkout would vanish under the new /tmp: keep it, read-only, at its path
    keep=$(mktemp -d /dev/shm/c27-repo.XXXXXX)
    mount --bind "$repo" "$keep"
    mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp
    mkdir -p "$repo"
    mount --bind "$keep" "$repo"
    mount -o remount,bind,ro "$repo"
    umount "$keep"; rmdir "$keep"
    ;;
  *) mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp ;;
esac
cd "${C27_WORKDIR:-/}"
if touch /c27-probe 2>/dev/null || touch "$PWD/c27-probe" 2>/dev/null; then
  echo "root filesystem is writable" >&2; exit 97
fi
exec setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=-all --bounding-set=-all \
  --no-new-privs -- "$@"
"""


def read_only(argv: list[str]) -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _READ_ONLY, "sh", *argv]


def _can_isolate() -> bool:
    if not (shutil.which("unshare") and shutil.which("setpriv") and shutil.which("findmnt")):
        return False
    probe = subprocess.run(read_only(["true"]), capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def _local(argv: list[str], port: int | None) -> list[str]:
    """The image's command line with this checkout's executables and a free local port."""
    argv = [str(BIN / argv[0]), *argv[1:]]
    if "--bind" in argv:
        argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return argv


@pytest.fixture(scope="module")
def isolation() -> None:
    if not _can_isolate():
        pytest.skip("needs unshare, setpriv and findmnt with mount privileges (root)")


@pytest.mark.processes
def test_c27_image_command_lines_serve_under_a_read_only_root(
    isolation: None, stack_env: dict[str, str]
) -> None:
    command_port, query_port = free_port(), free_port()
    env = {
        **stack_env,
        "HOME": "/nonexistent",
        "C27_WORKDIR": str(ROOT / "services"),
        "C27_REPO": str(ROOT),
        "QUERY_API_BIND": f"127.0.0.1:{query_port}",
        "QUERY_API_BASE_URL": f"http://127.0.0.1:{query_port}",
    }
    command_argv = _local(image_cmd(DOCKERFILES["command-api"]), command_port)
    services = [
        Service("c27-command-api", read_only(command_argv), env),
        Service("c27-query-api", read_only(_local(image_cmd(DOCKERFILES["query-api"]), None)), env),
        Service(
            "c27-worker", read_only(_local(image_cmd(DOCKERFILES["contact-worker"]), None)), env
        ),
    ]
    for service in services:
        service.start()
    try:
        command_url, query_url = (
            f"http://127.0.0.1:{command_port}",
            f"http://127.0.0.1:{query_port}",
        )
        services[0].wait_until(lambda: http_ok(f"{command_url}/readyz"), 60, "readiness")
        services[1].wait_until(lambda: http_ok(f"{query_url}/readyz"), 60, "readiness")
        services[2].wait_for_log("ready.", 60)
        # A little load through the whole path: writes accepted, applied by the worker, read back.
        operations = []
        for n in range(20):
            answer = api.post(
                f"{command_url}/v1/contacts",
                json={"first_name": f"C27 {n}", "email": f"c27-{n}@example.com"},
                timeout=5,
            )
            assert answer.status_code == 202, answer.text
            operations.append(answer.json())
        for _ in range(100):
            assert requests.get(f"{query_url}/healthz", timeout=5).status_code == 200
        last = operations[-1]
        services[1].wait_until(
            lambda: (
                api.get(f"{query_url}/v1/operations/{last['operation_id']}", timeout=5)
                .json()
                .get("status")
                == "applied"
            ),
            30,
            "the last write applied",
        )
        assert api.get(f"{query_url}/v1/contacts/{last['id']}", timeout=5).status_code == 200
        for service in services:
            assert service.alive(), service.tail()
            assert "Read-only file system" not in service.log(), service.tail()
    finally:
        for service in services:
            service.stop()
