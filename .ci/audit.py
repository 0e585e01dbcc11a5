"""CI: audit the installed Python packages for known vulnerabilities with pip-audit (docs/security.md).

    python .ci/audit.py            # exit 1 if any installed package has a known vulnerability

pip-audit asks a vulnerability service (PyPI's JSON API by default, OSV with --service osv). Offline, or
behind a mirror that serves packages but not that API, it cannot look anything up, and says so in a way that
is easy to miss: pip-audit 2.10 reports every package as "Dependency not found on PyPI and could not be
audited", prints "No known vulnerabilities found" and exits 0. This script reads pip-audit's JSON instead:
when no package could be looked up it prints SKIPPED with pip-audit's reason and exits 0 (nothing was audited,
which is not a pass); when some could, any vulnerability fails the step and the packages left unaudited are
listed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    command = [sys.executable, "-m", "pip_audit"]
    if shutil.which("pip-audit") is None:
        try:
            import pip_audit  # noqa: F401
        except ImportError:
            print("SKIPPED vulnerability audit: pip-audit is not "
                  "installed (pip install -e '.[dev]' installs it)")
            return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        run = subprocess.run([*command, "--local", "--progress-spinner", "off", "--format", "json",
                              "--output",
                              str(out)], capture_output=True, text=True, timeout=900)
        report = json.loads(out.read_text()) if out.is_file() and out.stat().st_size else None
    code, lines = verdict(report, run.stderr)
    print("\n".join(lines))
    return code


def verdict(report: dict | None, stderr: str = "") -> tuple[int, list[str]]:
    """(exit code, lines to print) for pip-audit's JSON report (None when it wrote none)."""
    if report is None:
        reason = (stderr.strip().splitlines() or ["no output"])[-1][:300]
        return 0, [
            f"SKIPPED vulnerability audit: pip-audit could not reach its vulnerability service ({reason})"]
    packages = report.get("dependencies", [])
    unaudited = [p for p in packages if "skip_reason" in p]
    vulnerable = [p for p in packages if p.get("vulns")]
    if not packages or len(unaudited) == len(packages):
        why = unaudited[0]["skip_reason"] if unaudited else "pip-audit listed no package"
        return 0, ["SKIPPED vulnerability audit: the vulnerability "
                   f"service answered for none of the {len(packages)} "
                   f"installed packages (offline, or a package mirror without PyPI's JSON API): {why}"]
    lines = []
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            lines.append(
                f"VULNERABLE {package['name']} {package.get('version')}: {vuln['id']} (fixed in {fixed})")
    if unaudited:
        names = ", ".join(p["name"] for p in unaudited[:20])
        lines.append(f"{len(unaudited)} package(s) could not be "
                     f"audited: {names}{' ...' if len(unaudited) > 20 else ''}")
    lines.append(f"vulnerability audit: {len(packages) - len(unaudited)} packages audited, "
                 f"{len(vulnerable)} with known vulnerabilities")
    return (1 if vulnerable else 0), lines

if __name__ == "__main__":
    sys.exit(main())
