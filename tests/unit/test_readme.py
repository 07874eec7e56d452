"""The README a newcomer follows: every template parameter documented (and none that is gone),
deploy commands that run as pasted, the local stack's ports, tokens and test cards as they are."""

from __future__ import annotations

import re
import tomllib

import pytest

from functions.local_stack.dev import parse_args
from tests.stripe_fake.payments import DECLINE_CARDS, SUCCESS_CARDS
from tests.support.template import REPO_ROOT, load_template

README = (REPO_ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def configuration_parameters() -> set[str]:
    """The template parameters the Configuration table's first column names."""
    names: set[str] = set()
    for line in section("Configuration").splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Za-z0-9]+)`", line.split("|")[1]))
    return names


def test_every_template_parameter_is_documented_and_no_documented_one_is_gone() -> None:
    assert configuration_parameters() == set(load_template()["Parameters"])


def test_the_deploy_steps_run_as_pasted() -> None:
    deploy = section("Deploy")
    assert "$(stack output" not in README
    environments = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    named = set(re.findall(r"--config-env (\w+)", deploy))
    assert named == {"staging"} and named <= set(environments)
    assert {"staging", "production"} <= set(environments)
    stacks = {environments[name]["global"]["parameters"]["stack_name"] for name in ("default", "staging", "production")}
    assert len(stacks) == 3, "each environment is its own stack"
    for name in ("staging", "production"):
        deploy_parameters = environments[name]["deploy"]["parameters"]
        assert deploy_parameters["capabilities"] == "CAPABILITY_IAM" and deploy_parameters["confirm_changeset"] is True
    (stack,) = re.findall(r"^STACK=(\S+)$", deploy, re.MULTILINE)
    assert stack == environments["staging"]["global"]["parameters"]["stack_name"]
    assert "OutputKey=='StripeSecretArn'" in deploy and "StripeSecretArn" in load_template()["Outputs"]


def test_the_local_development_section_says_how_to_reach_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEV_PORT", "DEV_WEBHOOK_PORT", "DEV_STRIPE_PORT", "DEV_AWS_PORT"):
        monkeypatch.delenv(name, raising=False)
    local = section("Local development")
    ports, _ = parse_args([])
    for variable, port in (
        ("DEV_PORT", ports.gateway),
        ("DEV_WEBHOOK_PORT", ports.webhook),
        ("DEV_STRIPE_PORT", ports.stripe),
        ("DEV_AWS_PORT", ports.aws),
    ):
        row = next(line for line in local.splitlines() if f"`{variable}`" in line)
        assert f":{port} " in row or row.endswith(f":{port}"), row
    assert "make token" in local and "STRIPE_SECRET_KEY" in local and "stripe listen" in local
    assert "in memory only" in local
    cards = {number.replace(" ", "") for number in re.findall(r"`(\d{4} \d{4} \d{4} \d{4})`", local)}
    assert cards and cards <= set(SUCCESS_CARDS) | set(DECLINE_CARDS)
