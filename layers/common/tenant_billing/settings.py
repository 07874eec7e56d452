"""The Lambda environment as one pydantic model, validated once on first use.

Nothing here runs at import time: `get_settings()` reads `os.environ` the first time a handler
asks, and every later call returns the same validated object.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenant_billing.errors import ConfigurationError

PRICE_ENV_PREFIX = "STRIPE_PRICE_"


class Settings(BaseModel):
    """Every environment variable the functions read. Field names are the variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TABLE_NAME: str = Field(min_length=3, max_length=255)
    # The secret's ARN, never its value. Empty means billing is not configured yet.
    STRIPE_SECRET_ARN: str = ""
    STRIPE_SECRET_MAX_AGE_SECONDS: int = Field(default=300, ge=0, le=86_400)
    # A Stripe-compatible server (the local emulator); unset means api.stripe.com.
    STRIPE_API_BASE: str = ""
    STRIPE_MAX_NETWORK_RETRIES: int = Field(default=2, ge=0, le=5)
    STRIPE_TIMEOUT_SECONDS: float = Field(default=8.0, gt=0, le=60)

    STRIPE_PRICE_STARTER_BASE: str = ""
    STRIPE_PRICE_PRO_BASE: str = ""
    STRIPE_PRICE_PRO_SITE: str = ""
    STRIPE_PRICE_ENTERPRISE_BASE: str = ""
    STRIPE_PRICE_ENTERPRISE_SITE: str = ""

    APP_BASE_URL: str = "http://localhost:3000"
    CHECKOUT_SUCCESS_URL: str = ""
    CHECKOUT_CANCEL_URL: str = ""
    PORTAL_RETURN_URL: str = ""
    PORTAL_CONFIGURATION_ID: str = ""
    ALLOW_PROMOTION_CODES: bool = False
    AUTOMATIC_TAX: bool = False

    TENANT_CLAIM: str = Field(default="org_id", min_length=1)
    ROLE_CLAIM: str = Field(default="org_role", min_length=1)
    ADMIN_ROLES: frozenset[str] = frozenset({"owner", "admin"})

    # What a past_due subscription is entitled to: its plan (Stripe's own dunning is still
    # retrying the card) or the fallback plan.
    PAST_DUE_ENTITLEMENTS: Literal["plan", "fallback"] = "plan"

    # Where EntitlementsChanged events go (a bus name or ARN), and their `source`.
    EVENT_BUS_NAME: str = Field(default="default", min_length=1)
    ENTITLEMENT_EVENT_SOURCE: str = Field(default="saas.billing", min_length=1)

    @field_validator("ADMIN_ROLES", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(role.strip() for role in value.split(",") if role.strip())
        return value

    @field_validator("APP_BASE_URL", "CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL", "PORTAL_RETURN_URL", "STRIPE_API_BASE")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("APP_BASE_URL", "STRIPE_API_BASE")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        # Paths are appended to these, so "https://app.example.com/" must not give "//app".
        return value.rstrip("/")

    @property
    def price_ids(self) -> dict[str, str]:
        """Configured price ids keyed by their environment variable name (empty ones left out)."""
        return {name: value for name, value in self.model_dump().items() if name.startswith(PRICE_ENV_PREFIX) and value}

    @property
    def success_url(self) -> str:
        return self.CHECKOUT_SUCCESS_URL or f"{self.APP_BASE_URL}/app/settings?billing=success"

    @property
    def cancel_url(self) -> str:
        return self.CHECKOUT_CANCEL_URL or f"{self.APP_BASE_URL}/app/billing?billing=canceled"

    @property
    def portal_return_url(self) -> str:
        return self.PORTAL_RETURN_URL or f"{self.APP_BASE_URL}/app/billing"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Validate the environment once. The error names each missing or malformed variable."""
    try:
        return Settings.model_validate({key: value for key, value in os.environ.items() if key in Settings.model_fields})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigurationError(f"invalid environment: {problems}") from None
