"""The operator-schema table the ONNX reader checks nodes against (pyconv.onnx.schemas) is the onnx
package's own: every schema version the installed onnx has, up to the newest the table knows, is in the
table with the same inputs, outputs, counts and attributes (a newer onnx may add versions beyond)."""
from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")

from pyconv.onnx import schemas  # noqa: E402


def test_the_shipped_table_is_the_onnx_registry():
    shipped = schemas._table()
    newest = max(e["since"] for versions in shipped.values() for e in versions)
    for op, versions in schemas.table_from_onnx().items():
        for entry in versions:
            if entry["since"] > newest:
                continue
            assert entry in shipped.get(op, []), f"{op} version {entry['since']} differs from the onnx package's"


def test_schemas_resolve_versions_as_onnx_does():
    conv = schemas.schema("Conv", 13)
    assert conv.since_version == onnx.defs.get_schema("Conv", 13).since_version
    assert [p.name for p in conv.inputs] == ["X", "W", "B"] and conv.inputs[2].option == schemas.OPTIONAL
    assert schemas.schema("NoSuchOperator", 13) is None
    with pytest.raises(schemas.NewerOperator):
        schemas.schema("Gelu", 13)  # an operator of opset 20
