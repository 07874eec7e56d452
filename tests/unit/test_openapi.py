"""The committed OpenAPI document is what the code generates, and covers exactly the routes of
template.yaml. After changing a route or a model: `make openapi`."""

from __future__ import annotations

import json

from tests.support.generate_openapi import OPENAPI_PATH, build_document, render
from tests.support.template import resources_of_type


def template_routes() -> set[tuple[str, str]]:
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for function in resources_of_type("AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }


def test_the_committed_document_has_not_drifted() -> None:
    assert OPENAPI_PATH.read_text() == render(build_document()), "run `make openapi` and commit the result"


def test_it_documents_exactly_the_template_routes() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert documented == template_routes()


def test_every_operation_needs_the_jwt_and_documents_its_errors() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    assert document["security"] == [{"jwt": []}]
    for operations in document["paths"].values():
        for operation in operations.values():
            assert {"200", "400", "401", "502", "503"} <= set(operation["responses"])
            assert "422" not in operation["responses"]
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }


def test_bodies_and_query_parameters_come_from_the_models() -> None:
    document = json.loads(OPENAPI_PATH.read_text())
    checkout = document["paths"]["/billing/checkout"]["post"]
    assert checkout["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PlanSelection"}
    plan_selection = document["components"]["schemas"]["PlanSelection"]
    assert set(plan_selection["properties"]) == {"plan", "siteQuantity", "interval"}
    interval = plan_selection["properties"]["interval"]
    assert [option.get("enum") for option in interval["anyOf"]] == [["month", "year"], None]
    assert plan_selection.get("additionalProperties") is False
    preview = document["paths"]["/billing/subscription/preview"]["get"]
    assert {parameter["name"] for parameter in preview["parameters"]} == {"plan", "siteQuantity", "interval"}
