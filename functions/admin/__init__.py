"""Operator commands (`python -m functions.admin`): run on an operator's machine, against `make dev`
or a deployed stack, never part of a deployed function."""
