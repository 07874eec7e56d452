"""Lint template.yaml as CloudFormation will see it: transformed by the SAM translator (the SAM
CLI's own), then checked by cfn-lint. cfn-lint on the SAM source cannot see what the transform
generates (each function's role, its policies), so a circular dependency between a generated role
and a resource that names it (E3004) would pass there and fail only at deployment.

Run with the SAM CLI's environment (`make validate`): .venv-sam/bin/python -P tests/support/lint_deployed_template.py
(-P: this folder's queue.py must not shadow the standard library's)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# The parameters without a default, as a deployment would give them.
REQUIRED_PARAMETERS = {"JwtIssuer": "https://issuer.example.com", "JwtAudience": "billing"}
REGION = "us-east-1"


class NoManagedPolicies:
    """The functions use inline statements only: no managed policy name needs resolving."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` uploads it: each code folder an S3 object."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://artifacts/{logical_id}.zip"
    return template


def main() -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    transformed = transform(packaged(yaml_parse(TEMPLATE.read_text())), REQUIRED_PARAMETERS, NoManagedPolicies())
    errors = [
        match for match in lint(json.dumps(transformed), config=ManualArgs(regions=[REGION])) if match.rule.id.startswith("E")
    ]
    for match in errors:
        print(f"{match.rule.id} {match.message} ({'/'.join(str(part) for part in match.path)})", file=sys.stderr)
    print(f"the transformed template ({len(transformed['Resources'])} resources): {len(errors)} cfn-lint error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
