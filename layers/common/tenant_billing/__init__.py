"""Shared code of the billing functions (the `common` layer). Import submodules directly:
the package itself imports nothing, so each handler pays only for what its path uses."""
