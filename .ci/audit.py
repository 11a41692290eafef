"""``make audit``: pip-audit over the packages installed in a virtualenv, with an honest summary.

Usage: ``python .ci/audit.py SITE_PACKAGES [--strict]`` (run with the auditor's own Python).

Exits 1 when any installed package (editable ones, i.e. ours, excepted) has a known
vulnerability, listing each with its fixed versions. A package the vulnerability service could
not look up (offline machine, a mirror without PyPI's JSON API) is not a pass: the summary says
how many were not audited, and ``--strict`` (CI with access to PyPI) fails on any.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Run the audit; returns the exit status (0 clean, 1 vulnerable or, strict, unaudited)."""
    site_packages, strict = argv[0], "--strict" in argv[1:]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--path",
            site_packages,
            "--skip-editable",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return 1
    dependencies = [
        d for d in report.get("dependencies", []) if "editable" not in d.get("skip_reason", "")
    ]
    skipped = [d for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            name, version = dependency["name"], dependency["version"]
            print(f"VULNERABLE {name} {version}: {vuln['id']} (fixed in: {fixed})")
    print(
        f"pip-audit: {len(dependencies) - len(skipped)} of {len(dependencies)} packages audited, "
        f"{len(vulnerable)} vulnerable, {len(skipped)} not audited"
    )
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        print(f"  not audited ({'; '.join(reasons)}): {', '.join(d['name'] for d in skipped)}")
    if vulnerable:
        return 1
    if skipped and strict:
        print("strict: every package must be audited", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
