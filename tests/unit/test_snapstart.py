"""SnapStart's runtime hooks (tenant_billing.snapstart): priming before the snapshot without any
credential, and what each restored environment must renew. Lambda's `snapshot_restore_py` exists
only in its Python runtime: a fake records the hooks and the test runs them as Lambda would
(before-snapshot hooks in reverse order of registration, after-restore hooks in order)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tenant_billing import aws_clients, observability, snapstart, stripe_adapter, stripe_credentials
from tenant_billing.catalog import get_catalog
from tenant_billing.settings import get_settings
from tests.support.template import REPO_ROOT, handler_modules, load_template, resources_of_type

Hook = Callable[[], object]


class FakeRuntimeHooks(types.ModuleType):
    """snapshot_restore_py's registration functions, recording the hooks."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[Hook] = []
        self.after: list[Hook] = []

    def register_before_snapshot(self, func: Hook, *args: Any, **kwargs: Any) -> Hook:
        self.before.append(lambda: func(*args, **kwargs))
        return func

    def register_after_restore(self, func: Hook, *args: Any, **kwargs: Any) -> Hook:
        self.after.append(lambda: func(*args, **kwargs))
        return func

    def snapshot(self) -> None:
        for hook in reversed(self.before):
            hook()

    def restore(self) -> None:
        for hook in self.after:
            hook()


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntimeHooks]:
    hooks = FakeRuntimeHooks()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.setattr(snapstart, "_restore_hook_registered", False)
    state = random.getstate()
    yield hooks
    random.setstate(state)  # leave the suite's PRNG as it was


def test_warmers_run_before_the_snapshot_without_credentials_and_restore_renews_the_environment(
    runtime: FakeRuntimeHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    seen_credentials: list[object] = []
    primed_clients: list[Any] = []

    def warm_clients() -> None:
        primed_clients.extend([aws_clients.dynamodb_client(), aws_clients.sqs_client()])
        seen_credentials.append(aws_clients._session().get_credentials())
        ran.append("clients")

    snapstart.prime_on_snapshot(warm_clients, get_settings, get_catalog, lambda: ran.append("last"))
    assert ran == []  # registered, not run: Lambda runs the hooks
    assert (len(runtime.before), len(runtime.after)) == (1, 1)

    monkeypatch.setattr(observability, "metrics", observability.LazyMetrics())
    runtime.snapshot()
    assert ran == ["clients", "last"]
    # Powertools, created on first use, is in the snapshot too.
    assert observability.logger.created and observability.metrics.created
    assert get_settings.cache_info().currsize == get_catalog.cache_info().currsize == 1
    # No credential was looked up for the snapshot, and none is cached in it.
    assert seen_credentials == [None]
    assert [client._request_signer._credentials for client in primed_clients] == [None, None]
    assert vars(aws_clients._session())["_credentials"] is None
    assert aws_clients.dynamodb_client.cache_info().currsize == 0  # the credential-less clients are gone
    # ... but the session keeps what it loaded: the next client is created from the cached model.
    loader = aws_clients._session().get_component("data_loader")
    assert any(key[0] == "load_service_model" and key[1] == "dynamodb" for key in loader._cache)

    # Between the snapshot and a restore: what a request of the snapshotted environment would cache.
    before_restore: Any = aws_clients.dynamodb_client()
    pooled = before_restore._endpoint.http_session._manager
    pooled.connection_from_url("https://dynamodb.us-east-1.amazonaws.com")
    assert len(pooled.pools) == 1
    assert aws_clients._session().get_credentials() is not None  # the chain is back after priming
    stripe_credentials._cache[("arn", "STRIPE_SECRET_KEY")] = (
        float("inf"),
        stripe_credentials.StripeCredentials("sk_test_x", ("whsec_x",)),
    )
    stripe_adapter._adapter_for_key("sk_test_x")
    random.seed(1234)
    snapshot_state = random.getstate()

    runtime.restore()
    assert random.getstate() != snapshot_state  # reseeded
    assert len(pooled.pools) == 0  # the snapshotted client's connections are closed
    assert aws_clients.dynamodb_client.cache_info().currsize == 0
    assert vars(aws_clients._session())["_credentials"] is None
    after_restore: Any = aws_clients.dynamodb_client()
    assert after_restore is not before_restore
    assert after_restore._request_signer._credentials is not None
    assert stripe_credentials._cache == {}
    assert stripe_adapter._adapter_for_key.cache_info().currsize == 0


def test_a_failing_warmer_does_not_stop_the_others(runtime: FakeRuntimeHooks) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("no")

    snapstart.prime_on_snapshot(broken, lambda: ran.append("after"))
    runtime.snapshot()
    assert ran == ["after"]


def test_the_restore_hook_is_registered_once_however_many_modules_prime(runtime: FakeRuntimeHooks) -> None:
    snapstart.prime_on_snapshot(get_settings)
    snapstart.prime_on_snapshot(get_catalog)
    assert (len(runtime.before), len(runtime.after)) == (2, 1)


def test_every_cached_client_factory_is_dropped_after_a_restore(runtime: FakeRuntimeHooks) -> None:
    factories = [value for name, value in vars(aws_clients).items() if name.endswith("_client") and callable(value)]
    assert len(factories) >= 4
    for factory in factories:
        factory()
    snapstart.prime_on_snapshot()
    runtime.restore()
    assert [factory.cache_info().currsize for factory in factories] == [0] * len(factories)


@pytest.mark.parametrize("initialization", [None, "on-demand", "provisioned-concurrency"])
def test_outside_snapstart_nothing_is_registered_or_imported(initialization: str | None) -> None:
    """In a fresh interpreter: importing the module and priming import nothing but the module
    itself (os is always loaded), never snapshot_restore_py, and run no warmer."""
    probe = r"""
import json, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "snapshot_restore_py":
            raise AssertionError("snapshot_restore_py imported")
        return None
sys.meta_path.insert(0, Refuse())
before = set(sys.modules)
from tenant_billing.snapstart import prime_on_snapshot
ran = []
prime_on_snapshot(lambda: ran.append(1))
print(json.dumps({"imported": sorted(set(sys.modules) - before), "ran": ran}))
"""
    env = {name: value for name, value in os.environ.items() if name != "AWS_LAMBDA_INITIALIZATION_TYPE"}
    env["PYTHONPATH"] = str(REPO_ROOT / "layers/common")
    if initialization:
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = initialization
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    found = json.loads(result.stdout)
    assert found == {"imported": ["tenant_billing", "tenant_billing.snapstart"], "ran": []}


def test_the_template_turns_snapstart_on_for_every_function_only_when_asked() -> None:
    template = load_template()
    parameter = template["Parameters"]["SnapStart"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("None", ["None", "PublishedVersions"])
    function_globals = template["Globals"]["Function"]
    assert function_globals["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
    # No alias: with AutoPublishAlias, SAM publishes no version when only a parameter's value changes
    # (aws/serverless-application-model#3820), so a new StripePrices or AdminRoles would silently
    # not reach what the events invoke.
    assert "AutoPublishAlias" not in function_globals
    for logical_id, function in resources_of_type("AWS::Serverless::Function").items():
        properties = function["Properties"]
        assert "SnapStart" not in properties and "AutoPublishAlias" not in properties, logical_id


HANDLER_MODULES = handler_modules()


@pytest.mark.parametrize("module_name", HANDLER_MODULES)
def test_every_handler_primes_its_clients_settings_and_catalog_without_a_failing_warmer(
    runtime: FakeRuntimeHooks, monkeypatch: pytest.MonkeyPatch, module_name: str
) -> None:
    import importlib

    from tenant_billing import observability

    failures: list[Any] = []
    monkeypatch.setattr(observability.logger, "warning", lambda *args, **kwargs: failures.append((args, kwargs)))
    module = importlib.import_module(module_name)
    runtime.before.clear()
    aws_clients.dynamodb_client.cache_clear()
    get_settings.cache_clear()
    importlib.reload(module)  # its module level registers the hooks, as Lambda's init would
    assert len(runtime.before) == 1
    runtime.snapshot()
    assert failures == []
    # What priming created survives as warm data only: the clients were dropped with the credentials.
    assert aws_clients.dynamodb_client.cache_info().currsize == 0
    assert get_settings.cache_info().currsize == 1
    runtime.restore()
