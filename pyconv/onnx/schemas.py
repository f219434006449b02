"""The ONNX operator schemas the reader checks every node against (inputs, outputs, attributes), from a
table shipped beside this module (``schemas.json``), made from the ``onnx`` package's own registry.

Why a table: the first query of ``onnx.defs`` builds the registry of every operator of every domain and
version, 7 MiB that then stay in the process; an embedded device importing one model would pay that on
top of the model. The table holds the default domain's schemas only, read once (about 0.2 MB of JSON)
and only the operators a model uses kept as :class:`Schema` objects. :func:`write_table` writes it again
from the installed ``onnx`` (a test compares the two).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

__all__ = ["NewerOperator", "Parameter", "Schema", "SINGLE", "OPTIONAL", "VARIADIC", "TABLE", "schema",
           "table_from_onnx", "write_table"]

TABLE = Path(__file__).with_name("schemas.json")
# onnx.defs.OpSchema.FormalParameterOption's values.
SINGLE, OPTIONAL, VARIADIC = 0, 1, 2


class NewerOperator(Exception):
    """The operator exists, but only in opsets newer than the model's."""


@dataclass(frozen=True)
class Parameter:
    name: str
    option: int  # SINGLE, OPTIONAL or VARIADIC


@dataclass(frozen=True)
class Schema:
    """One version of an operator: its formal inputs and outputs, their counts, and its attributes by
    name as (AttributeProto type, type name, required)."""

    since_version: int
    inputs: tuple[Parameter, ...]
    outputs: tuple[Parameter, ...]
    min_input: int
    max_input: int
    min_output: int
    max_output: int
    attributes: dict[str, tuple[int, str, bool]]


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, list[dict[str, Any]]]:
    with open(TABLE, encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _versions(op_type: str) -> Optional[tuple[Schema, ...]]:
    entries = _table().get(op_type)
    if entries is None:
        return None
    return tuple(Schema(e["since"], tuple(Parameter(n, o) for n, o in e["inputs"]),
                        tuple(Parameter(n, o) for n, o in e["outputs"]), e["min_input"], e["max_input"],
                        e["min_output"], e["max_output"], {k: tuple(v) for k, v in e["attributes"].items()})
                 for e in sorted(entries, key=lambda e: e["since"]))


def schema(op_type: str, opset: int) -> Optional[Schema]:
    """The schema of the default domain's ``op_type`` at ``opset`` (its newest version not newer), None
    for an operator the table does not know; :class:`NewerOperator` if it exists only in newer opsets."""
    versions = _versions(op_type)
    if versions is None:
        return None
    usable = [s for s in versions if s.since_version <= opset]
    if not usable:
        raise NewerOperator(op_type)
    return usable[-1]


def table_from_onnx() -> dict[str, list[dict[str, Any]]]:
    """The table, made from the installed ``onnx`` package's registry (the default domain's schemas)."""
    import onnx

    table: dict[str, list[dict[str, Any]]] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain not in ("", "ai.onnx"):
            continue
        table.setdefault(s.name, []).append({
            "since": s.since_version,
            "inputs": [[p.name, int(p.option)] for p in s.inputs],
            "outputs": [[p.name, int(p.option)] for p in s.outputs],
            "min_input": s.min_input, "max_input": s.max_input,
            "min_output": s.min_output, "max_output": s.max_output,
            "attributes": {name: [int(a.type), a.type.name, bool(a.required)]
                           for name, a in sorted(s.attributes.items())},
        })
    for versions in table.values():
        versions.sort(key=lambda e: e["since"])
    return dict(sorted(table.items()))


def write_table() -> None:
    """Write :data:`TABLE` from the installed ``onnx`` package."""
    TABLE.write_text(json.dumps(table_from_onnx(), separators=(",", ":")) + "\n", encoding="utf-8")
