"""Every host/micronn/lower_*.py module imports on its own, first thing in a fresh
interpreter (lower.py is the hub: the group modules import from it and it merges
their tables), and lower.py's tables come out the same, in the same order,
whichever module is imported first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import micronn

GROUPS = sorted(p.stem for p in Path(micronn.__file__).parent.glob("lower_*.py"))

# The tables as data: op name -> the lowering function's module and name, the limits, the operand counts.
PROBE = """
import importlib, json, sys
importlib.import_module("micronn." + sys.argv[1])
from micronn import lower
print(json.dumps({"LOWERINGS": [[k, f.__module__ + "." + f.__qualname__] for k, f in lower.LOWERINGS.items()],
                  "LIMITS": [[k, list(v)] for k, v in lower.LIMITS.items()],
                  "OPERANDS": [[k, v] for k, v in lower.OPERANDS.items()]}))
"""


def _tables(first: str) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, first], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"import micronn.{first} first:\n{r.stderr}"
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def hub():
    return _tables("lower")


def test_the_groups_are_found():
    from micronn import lower

    assert len(GROUPS) >= 10 and set(GROUPS) == set(lower.GROUPS)


@pytest.mark.parametrize("first", GROUPS)
def test_group_module_imports_first(first, hub):
    assert _tables(first) == hub            # every group merged, in lower.GROUPS' order


def test_every_group_is_in_the_tables(hub):
    where = {fn.rsplit(".", 1)[0] for _, fn in hub["LOWERINGS"]}
    assert {f"micronn.{g}" for g in GROUPS} <= where, sorted(where)
