"""The API version the fake speaks and the API key it accepts by default."""

from __future__ import annotations

API_VERSION = "2026-10-28.endive"
TEST_API_KEY = "sk_test_fake_0123456789"
