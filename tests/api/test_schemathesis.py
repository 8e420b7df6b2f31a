"""Property-based fuzzing of every operation in the published OpenAPI schema: no input yields a 500.

Each generated request is sent with a telephony, a security and an admin key of one tenant (FakeEngine, so
audio that decodes is embedded quickly). Bounded: a few examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import make_api

MAX_EXAMPLES = 6


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("fuzz")
    gen = make_api(f"sqlite+pysqlite:///{tmp / 'fuzz.db'}", tmp)
    api = next(gen)
    for ref in ("cust-1", "0"):
        api.register(ref)
    yield api
    for _ in gen:
        pass


@pytest.fixture(scope="module")
def api_schema(fuzz_api: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.client.app)


@pytest.mark.usefixtures("no_lazy_speechbrain_modules")
def test_no_server_errors(fuzz_api: Any, api_schema: Any) -> None:
    client: TestClient = fuzz_api.client
    headers = [{"Authorization": f"Bearer {fuzz_api.keys[f'acme:{r}']}"} for r in ("telephony", "security", "admin")]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            derandomize=True,
            database=None,
        )
        @given(case=op.as_strategy())
        def check(case: Any) -> None:
            for h in headers:
                case.call_and_validate(session=client, headers=h, checks=[not_a_server_error])

        check()
    sent = sum(
        s.value
        for m in fuzz_api.client.app.state.services.metrics.registry.collect()
        if m.name == "voiceauth_http_request_duration_seconds"
        for s in m.samples
        if s.name.endswith("_count")
    )
    assert sent >= 3 * len(operations) * 2  # the fuzzer really sent requests (several examples each)
