"""Lambda SnapStart's runtime hooks (template.yaml's SnapStart parameter; off by default).

Under SnapStart, Lambda runs a version's init phase once, when the version is published, takes a
snapshot of the execution environment, and resumes every new environment of that version from it.
A handler calls prime_on_snapshot(...) at module level with its warmers (the imports are done by
then):

- before the snapshot, Powertools' objects are created and the warmers run (create the AWS
  clients, load the settings and the catalog), so the snapshot holds Powertools and botocore's
  loaded models and endpoint data. No credential is read into it:
  the warmers run with botocore's credential chain emptied, and the clients they created (which
  could not sign) are dropped afterwards; the Stripe secret is only ever read by a request.
- after a restore, what must be unique or fresh in each environment is renewed: `random` is
  reseeded, the cached botocore clients are closed (their pooled connections dropped) and forgotten
  with the session's credentials (the next use creates a client from the loaded models, about 5 ms,
  with credentials resolved then), and any cached Stripe credentials and Stripe client are forgotten.

Warmers may call the factories (aws_clients, get_settings, get_catalog, the stores' getters) but
must not make AWS calls (there are no credentials) or read the Stripe secret; objects the code
caches keep client factories, never clients, so dropping the clients reaches them all.

Outside SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE is not "snap-start") prime_on_snapshot does
nothing, and this module imports nothing but os. `snapshot_restore_py` exists only in Lambda's
Python runtime.
"""

import os

# Not typing.TYPE_CHECKING, and no `from __future__ import annotations` (hence the quoted
# annotations): outside SnapStart this module imports nothing but os. mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from functools import _lru_cache_wrapper
    from typing import Any

SNAP_START = "snap-start"

_restore_hook_registered = False


def prime_on_snapshot(*warmers: "Callable[[], object]") -> None:
    """Under SnapStart, run `warmers` before the snapshot and renew the environment after each
    restore (see the module's docstring); otherwise nothing."""
    global _restore_hook_registered
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAP_START:
        return
    from snapshot_restore_py import register_after_restore, register_before_snapshot  # type: ignore[import-not-found]

    def before_snapshot() -> None:
        _prime(warmers)

    register_before_snapshot(before_snapshot)
    if not _restore_hook_registered:  # once, however many modules prime
        register_after_restore(_after_restore)
        _restore_hook_registered = True


def _prime(warmers: "tuple[Callable[[], object], ...]") -> None:
    from tenant_billing.observability import logger, prime

    with _CredentialsOff():
        # Powertools first: the observability objects are created on first use (observability).
        for warmer in (prime, *warmers):
            try:
                warmer()
            except Exception as exc:  # priming is an optimisation: the request path creates what failed
                name = getattr(warmer, "__qualname__", type(warmer).__name__)
                logger.warning("a SnapStart warmer failed", extra={"warmer": name, "error": type(exc).__name__})


class _CredentialsOff:
    """While active, clients of our botocore session are created without credentials (none is
    looked up). On exit the session's credential chain is back, and the clients created meanwhile,
    which could not sign a request, are dropped: what stays warm is the session's loaded data."""

    def __enter__(self) -> None:
        from botocore.credentials import CredentialResolver

        from tenant_billing.aws_clients import _session

        self._resolver = _session().get_component("credential_provider")
        _session().register_component("credential_provider", CredentialResolver(providers=[]))

    def __exit__(self, *_: object) -> None:
        from tenant_billing.aws_clients import _session

        _drop_clients()
        _session().register_component("credential_provider", self._resolver)
        _forget_session_credentials()


def _drop_clients() -> None:
    """Close and forget every cached botocore client: the next use creates one (about 5 ms from a
    session whose models are loaded), with fresh credentials and connections."""
    for factory in _cached_client_factories():
        if factory.cache_info().currsize:
            factory().close()  # closes the client's pooled connections
        factory.cache_clear()


def _forget_session_credentials() -> None:
    import sys
    from typing import cast

    aws_clients = sys.modules.get("tenant_billing.aws_clients")
    if aws_clients is not None and aws_clients._session.cache_info().currsize:
        # botocore caches the session's credentials there (Session.get_credentials). The only
        # public way to drop them is a new session, which would load botocore's data again.
        cast("Any", aws_clients._session())._credentials = None


def _cached_client_factories() -> "list[_lru_cache_wrapper[Any]]":
    """tenant_billing.aws_clients' cached client factories (every `*_client`), if it is imported."""
    import sys

    aws_clients = sys.modules.get("tenant_billing.aws_clients")
    return [
        value
        for value in (vars(aws_clients).values() if aws_clients is not None else ())
        if getattr(value, "__name__", "").endswith("_client") and hasattr(value, "cache_clear")
    ]


def _after_restore() -> None:
    import random
    import sys

    # Every environment restored from one snapshot starts from its PRNG state: reseed (from
    # os.urandom), so retry jitter (ours and botocore's) differs between them.
    random.seed()
    _drop_clients()
    _forget_session_credentials()
    # Only modules already imported hold anything: never import the Stripe SDK here.
    stripe_credentials = sys.modules.get("tenant_billing.stripe_credentials")
    if stripe_credentials is not None:
        stripe_credentials.forget_stripe_credentials()
    stripe_adapter = sys.modules.get("tenant_billing.stripe_adapter")
    if stripe_adapter is not None:
        stripe_adapter._adapter_for_key.cache_clear()
    stripe_prices = sys.modules.get("tenant_billing.stripe_prices")
    if stripe_prices is not None:
        stripe_prices.resolve_lookup_keys.cache_clear()  # its cache keys hold a Stripe port
