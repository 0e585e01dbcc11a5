"""The CI audit step (.ci/audit.py): a vulnerability fails it; an audit that could look nothing up says
SKIPPED with the reason instead of passing as pip-audit itself does offline ("No known vulnerabilities found",
exit 0)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_the_step_naming_package_id_and_fix(audit) -> None:
    report = {"dependencies": [
        {"name": "h11", "version": "0.14.0",
         "vulns": [{"id": "GHSA-vqfr-h8mv-ghfj", "fix_versions": ["0.16.0"]}]},
        {"name": "numpy", "version": "2.4.6", "vulns": []},
    ]}
    code, lines = audit.verdict(report)
    assert code == 1
    assert "VULNERABLE h11 0.14.0: GHSA-vqfr-h8mv-ghfj (fixed in 0.16.0)" in lines
    assert lines[-1] == "vulnerability audit: 2 packages audited, 1 with known vulnerabilities"


def test_offline_where_nothing_could_be_looked_up_is_a_skip_with_the_reason_not_a_pass(audit) -> None:
    why = "Dependency not found on PyPI and could not be audited: numpy (2.4.6)"
    report = {"dependencies": [{"name": "numpy", "skip_reason": why}, {"name": "h11", "skip_reason": why}]}
    code, [line] = audit.verdict(report)
    assert code == 0 and line.startswith("SKIPPED vulnerability audit") and why in line


def test_no_report_at_all_is_a_skip_naming_pip_audits_error(audit) -> None:
    code, [line] = audit.verdict(None, "Traceback...\nConnectionError: Failed to resolve 'api.osv.dev'")
    assert code == 0 and "SKIPPED" in line and "Failed to resolve 'api.osv.dev'" in line


def test_a_clean_audit_passes_and_lists_what_it_could_not_audit(audit) -> None:
    report = {"dependencies": [{"name": "numpy", "version": "2.4.6", "vulns": []},
                               {"name": "engage", "skip_reason": "not on PyPI"}]}
    code, lines = audit.verdict(report)
    assert code == 0 and "1 package(s) could not be audited: engage" in lines


#: A version of each input parser with a known vulnerability that engage's floors must exclude.
VULNERABLE = [("pillow", "10.0.0"), ("pillow", "12.1.1"), ("python-multipart", "0.0.17"),
    ("python-multipart", "0.0.21"), ("h11", "0.14.0"), ("starlette", "0.49.0"), ("starlette", "1.0.0"),
              ("pyarrow", "14.0.0"), ("lightgbm", "4.5.0")]


@pytest.mark.parametrize(("name", "version"), VULNERABLE)
def test_dependency_floors_exclude_versions_with_known_vulnerabilities(name: str, version: str) -> None:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((SCRIPT.parents[1] / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    assert name in requirements, f"{name} has no floor in pyproject.toml"
    assert not requirements[name].specifier.contains(version, prereleases=True)
