"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), on the real smoke model.

Every operation in /openapi.json gets generated requests, valid and invalid (JSON and multipart bodies,
headers), sent to `python serve.py` with an API key set. No answer may be a server error (5xx), and every
answer must be one the schema documents: its status code, content type, headers and body schema.
`benchmarks/fuzz_api.py` runs the same with more examples and every schemathesis check, and prints a summary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving_helpers import ServeProcess

pytestmark = pytest.mark.slow  # needs the session's trained smoke model

API_KEY = "fuzz-key"
#: Examples per operation: enough to reach every field of both body types, small enough for ~1 minute.
EXAMPLES = 40
#: /v1/compare scores up to 10 drafts, and with best_hour 168 candidate hours each: seconds per request.
COMPARE_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture(scope="module")
def fuzzed_server(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(bundle, tmp_path_factory.mktemp("fuzz") / "serve.log",
                      env={"ENGAGE_API_KEY": API_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: ServeProcess):
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.exclude(path="/v1/compare").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    case, fuzzed_server: ServeProcess) -> None:
    case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS, timeout=300)


@schema.include(path="/v1/compare").parametrize()
@settings(max_examples=COMPARE_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_comparison_gets_a_server_error_or_an_undocumented_answer(
    case, fuzzed_server: ServeProcess) -> None:
    case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS, timeout=300)
