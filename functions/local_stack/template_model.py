"""What the local stack needs from template.yaml: each function's handler, code folder and
environment (Globals merged with its own, references resolved), the HTTP API's routes, CORS and
JWT authorizer, which functions have a Function URL and which consume an SQS queue, and which
queue each EventBridge rule targets. Read from the template itself, so the
local stack and the deployed stack cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.template import REPO_ROOT, load_template


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source of a function: the queue's logical id and how Lambda polls it."""

    queue: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: str
    handler_module: str
    handler_name: str
    environment: dict[str, str]
    routes: tuple[tuple[str, str], ...] = ()
    function_url: bool = False
    queues: tuple[QueueSource, ...] = ()
    # Seconds (the function's Timeout, else Globals'): what its context's remaining time counts down from.
    timeout: int = 3
    # Invoked by a person or a schedule (no API route, URL, queue or stream): what `lambda invoke` may call.
    directly_invoked: bool = False


@dataclass(frozen=True)
class ApiSpec:
    cors_origins: tuple[str, ...]
    cors_headers: tuple[str, ...]
    cors_methods: tuple[str, ...]
    cors_max_age: int
    jwt_issuer: str
    jwt_audiences: tuple[str, ...]
    identity_source: str


@dataclass(frozen=True)
class LocalStack:
    functions: dict[str, FunctionSpec]
    api: ApiSpec
    parameters: dict[str, str] = field(default_factory=dict)
    # {EventBridge rule: the queue it targets}, by logical id.
    rule_queues: dict[str, str] = field(default_factory=dict)

    def route(self, method: str, path: str) -> FunctionSpec | None:
        for function in self.functions.values():
            if (method, path) in function.routes:
                return function
        return None

    def url_functions(self) -> list[FunctionSpec]:
        return [function for function in self.functions.values() if function.function_url]

    def queue_consumers(self) -> list[tuple[FunctionSpec, QueueSource]]:
        return [(function, source) for function in self.functions.values() for source in function.queues]


class TemplateError(ValueError):
    pass


def _get_att_name(value: Any) -> str:
    """`Queue.Arn` from either form of !GetAtt."""
    return value if isinstance(value, str) else ".".join(value)


def resolve(value: Any, parameters: Mapping[str, str], resources: Mapping[str, str]) -> Any:
    """Resolve !Ref (parameters and the few resources the runner stands in for) and !GetAtt of
    those resources (`resources` keyed `Queue.Arn`; any other !GetAtt is left as it is)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name in parameters:
            return parameters[name]
        if name in resources:
            return resources[name]
        raise TemplateError(f"cannot resolve !Ref {name} locally")
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return resources.get(_get_att_name(value["Fn::GetAtt"]), value)
    if isinstance(value, dict):
        return {key: resolve(item, parameters, resources) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, parameters, resources) for item in value]
    return value


def _as_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(str(item) for item in value)


def _queue_sources(events: Mapping[str, Any]) -> tuple[QueueSource, ...]:
    """The function's SQS events (their queue a !GetAtt <queue>.Arn of this template)."""
    sources = []
    for event in events.values():
        if event["Type"] != "SQS":
            continue
        properties = event["Properties"]
        queue_arn = properties["Queue"]
        if not (isinstance(queue_arn, dict) and set(queue_arn) == {"Fn::GetAtt"}):
            raise TemplateError(f"an SQS event's Queue must be !GetAtt <queue>.Arn locally, not {queue_arn!r}")
        queue, _, attribute = _get_att_name(queue_arn["Fn::GetAtt"]).partition(".")
        if attribute != "Arn":
            raise TemplateError(f"an SQS event's Queue must be !GetAtt {queue}.Arn")
        sources.append(
            QueueSource(
                queue=queue,
                batch_size=int(properties.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            )
        )
    return tuple(sources)


def _rule_queues(resources: Mapping[str, Any]) -> dict[str, str]:
    """{rule: queue} for each EventBridge rule of the template with an SQS queue of it as a target."""
    queues = {name for name, res in resources.items() if res["Type"] == "AWS::SQS::Queue"}
    found = {}
    for name, res in resources.items():
        if res["Type"] != "AWS::Events::Rule":
            continue
        for target in res["Properties"].get("Targets", []):
            arn = target["Arn"]
            if isinstance(arn, dict) and set(arn) == {"Fn::GetAtt"}:
                queue, _, _ = _get_att_name(arn["Fn::GetAtt"]).partition(".")
                if queue in queues:
                    found[name] = queue
    return found


def load_local_stack(overrides: Mapping[str, str], resources: Mapping[str, str]) -> LocalStack:
    """The template with parameter defaults, `overrides` on top, and `resources` standing in for
    !Ref of resources (the table name, the secret ARN, the layer, the queues' URLs) and for !GetAtt
    (the queues' `<queue>.Arn`)."""
    template = load_template()
    parameters: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            parameters[name] = overrides[name]
        elif "Default" in spec:
            parameters[name] = str(spec["Default"])
    missing = [name for name in template.get("Parameters", {}) if name not in parameters]
    if missing:
        raise TemplateError(f"template parameters without a local value: {', '.join(missing)}")
    function_globals = template.get("Globals", {}).get("Function", {})
    global_env = function_globals.get("Environment", {}).get("Variables", {})
    functions: dict[str, FunctionSpec] = {}
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        properties = res["Properties"]
        env = {**global_env, **properties.get("Environment", {}).get("Variables", {})}
        module, _, name = properties["Handler"].rpartition(".")
        routes = tuple(
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in properties.get("Events", {}).values()
            if event["Type"] == "HttpApi"
        )
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=str(REPO_ROOT / properties["CodeUri"]),
            handler_module=module,
            handler_name=name,
            environment={key: str(value) for key, value in resolve(env, parameters, resources).items()},
            routes=routes,
            function_url="FunctionUrlConfig" in properties,
            queues=_queue_sources(properties.get("Events", {})),
            timeout=int(properties.get("Timeout", function_globals.get("Timeout", 3))),
            directly_invoked="FunctionUrlConfig" not in properties
            and all(event["Type"] == "Schedule" for event in properties.get("Events", {}).values()),
        )
    (api_resource,) = [res for res in template["Resources"].values() if res["Type"] == "AWS::Serverless::HttpApi"]
    api_properties = resolve(api_resource["Properties"], parameters, resources)
    cors = api_properties.get("CorsConfiguration", {})
    auth = api_properties["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    api = ApiSpec(
        cors_origins=_as_list(cors.get("AllowOrigins", [])),
        cors_headers=tuple(header.lower() for header in _as_list(cors.get("AllowHeaders", []))),
        cors_methods=tuple(method.upper() for method in _as_list(cors.get("AllowMethods", []))),
        cors_max_age=int(cors.get("MaxAge", 0)),
        jwt_issuer=str(authorizer["JwtConfiguration"]["issuer"]),
        jwt_audiences=_as_list(authorizer["JwtConfiguration"]["audience"]),
        identity_source=str(authorizer.get("IdentitySource", "$request.header.Authorization")),
    )
    return LocalStack(functions, api, parameters, _rule_queues(template["Resources"]))
