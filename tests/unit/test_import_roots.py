"""pytest's pythonpath is the one list of import roots (the Makefile and the e2e stack read it): the
layer, exactly the function folders template.yaml deploys, and the repository root."""

from __future__ import annotations

import tomllib

from tests.support.template import REPO_ROOT, resources_of_type


def test_pythonpath_lists_the_layer_every_deployed_function_and_the_root() -> None:
    pythonpath = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["pythonpath"]
    code_dirs = [
        function["Properties"]["CodeUri"].rstrip("/") for function in resources_of_type("AWS::Serverless::Function").values()
    ]
    assert pythonpath[0] == "layers/common"
    assert pythonpath[-1] == "."
    assert sorted(pythonpath[1:-1]) == sorted(code_dirs)


def test_the_local_stack_is_not_a_function() -> None:
    code_dirs = {function["Properties"]["CodeUri"] for function in resources_of_type("AWS::Serverless::Function").values()}
    assert not any("local_stack" in code_dir for code_dir in code_dirs)
    assert (REPO_ROOT / "functions" / "local_stack" / "__init__.py").is_file()
