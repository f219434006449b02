"""Parse and validate a model config: JSON syntax, the shipped JSON Schema, then the graph itself.

The result is a :class:`ModelSpec` whose layers are in a topological order (the config's own order
wherever the dependencies allow it) with every optional field filled with its default. Every problem
is a :class:`~pyconv.graph.errors.ModelError` naming the layer and the field, what was expected and
what was found.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import jsonschema

from ..activations import ActivationError, parse as parse_activation
from .errors import ModelError
from .layers import LAYER_TYPES

__all__ = ["LayerSpec", "ModelSpec", "copy_config", "parse_config", "read_config", "schema"]

# How deeply a config's values may nest. A valid config nests five levels; the bound keeps copying and
# validating it far from the interpreter's recursion limit.
MAX_DEPTH = 64


@dataclass
class LayerSpec:
    """One layer of the config, defaults filled in."""

    name: str
    type: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]


@dataclass
class ModelSpec:
    """A validated config: layers in topological order."""

    name: str
    layers: dict[str, LayerSpec]
    inputs: list[str]
    outputs: list[str]
    weights: Optional[str]
    seed: int
    output_layout: str
    document: dict[str, Any] = field(repr=False)
    # Extra names of tensors (ONNX tensor names): name -> {"layer", "pads", "shape"} (docs/model-format.md).
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the model format, as shipped in the package."""
    text = resources.files(__package__).joinpath("model.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def read_config(path: Union[str, Path]) -> dict[str, Any]:
    """Read a config file into a dict; malformed JSON is reported with its line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path.name}: expected UTF-8 JSON text, found byte {exc.object[exc.start]:#04x} at "
                         f"offset {exc.start}", hint="is this the weights file instead of the config?") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelError(f"{path.name}: expected a config, found JSON nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path.name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                         hint="check for a missing comma, bracket or quote just before that position") from None


def copy_config(doc: Any) -> Any:
    """A deep copy of a config document (a mapping given by the caller is not modified); nesting
    deeper than :data:`MAX_DEPTH` is a :class:`ModelError`."""
    stack = [(doc, 0)]
    while stack:  # iterative: a recursive walk would itself exhaust the stack it guards
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelError(f"expected a config nesting at most {MAX_DEPTH} levels, found deeper values")
        children = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children)
    return copy.deepcopy(dict(doc) if isinstance(doc, Mapping) else doc)


def _found(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(error: jsonschema.ValidationError) -> str:
    sub = error.schema if isinstance(error.schema, dict) else {}
    v, arg = error.validator, error.validator_value
    if v in ("enum", "const") and "description" not in sub:
        values = arg if v == "enum" else [arg]
        return "one of " + ", ".join(json.dumps(x) for x in values)
    if "description" in sub:
        return sub["description"]
    if v == "type":
        return f"a value of type {arg if isinstance(arg, str) else ' or '.join(arg)}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return f"a number {op} {arg}"
    if v in ("minItems", "maxItems"):
        return f"{'at least' if v == 'minItems' else 'at most'} {arg} items"
    return error.message


def _field(path: list) -> Optional[str]:
    """``["padding", 1, 0]`` -> ``"padding[1][0]"``."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or None


def _schema_error(doc: dict[str, Any], error: jsonschema.ValidationError) -> ModelError:
    path = list(error.absolute_path)
    layer = None
    if len(path) >= 2 and path[0] == "layers":
        entry = doc["layers"][path[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        layer = name if isinstance(name, str) and name else f"layers[{path[1]}]"
        path = path[2:]
    if error.validator == "required":
        missing = [p for p in error.validator_value if p not in error.instance]
        return ModelError(f"missing required field {missing[0]!r}", layer=layer, field=_field(path + [missing[0]]))
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - known)
        kind = f" for type {error.instance.get('type')!r}" if layer is not None else ""
        return ModelError(f"unknown field{kind}; expected one of {', '.join(sorted(known))}",
                          layer=layer, field=_field(path + [extra[0]]))
    fieldname = _field(path)
    hint = None
    if path == ["type"]:
        hint = "known layer types: " + ", ".join(LAYER_TYPES)
    return ModelError(f"expected {_expected(error)}, found {_found(error.instance)}", layer=layer,
                      field=fieldname, hint=hint)


def _error_order(error: jsonschema.ValidationError) -> tuple:
    path = list(error.absolute_path)
    index = path[1] if len(path) >= 2 and path[0] == "layers" else -1
    # The layer's type decides which other fields are legal, so a bad type is the error to report.
    return (index, 0 if path[2:] == ["type"] else 1)


def _check_structure(layers: list[LayerSpec], outputs: list[str]) -> list[LayerSpec]:
    """Duplicate names, dangling inputs, arity and cycles; returns the layers topologically sorted."""
    by_name: dict[str, LayerSpec] = {}
    for spec in layers:
        if spec.name in by_name:
            raise ModelError(f"duplicate layer name (also used by an earlier {by_name[spec.name].type} layer)",
                             layer=spec.name, field="name", hint="every layer needs a unique name")
        by_name[spec.name] = spec
    for spec in layers:
        lo, hi = LAYER_TYPES[spec.type].arity
        n = len(spec.inputs)
        if n < lo or (hi is not None and n > hi):
            want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise ModelError(f"a {spec.type} layer takes {want} input(s), found {n}", layer=spec.name,
                             field="inputs")
        for i, src in enumerate(spec.inputs):
            if src not in by_name:
                raise ModelError(f"expected the name of a layer, found unknown layer {src!r}",
                                 layer=spec.name, field=f"inputs[{i}]")
    for i, out in enumerate(outputs):
        if out not in by_name:
            raise ModelError(f"expected the name of a layer, found unknown layer {out!r}", field=f"outputs[{i}]")

    # Kahn's algorithm, always taking the earliest ready layer, so execution follows the config order
    # wherever the dependencies allow.
    position = {spec.name: i for i, spec in enumerate(layers)}
    pending = {spec.name: len(set(spec.inputs)) for spec in layers}
    consumers: dict[str, list[str]] = {spec.name: [] for spec in layers}
    for spec in layers:
        for src in set(spec.inputs):
            consumers[src].append(spec.name)
    ready = sorted((name for name, n in pending.items() if n == 0), key=position.__getitem__)
    order: list[LayerSpec] = []
    while ready:
        name = ready.pop(0)
        order.append(by_name[name])
        for c in consumers[name]:
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
                ready.sort(key=position.__getitem__)
    if len(order) < len(layers):
        cycle = _find_cycle(by_name, {name for name, n in pending.items() if n > 0})
        raise ModelError(f"the graph has a cycle: {' -> '.join(cycle)}", layer=cycle[0], field="inputs",
                         hint="a layer's inputs must be computed before it")
    return order


def _find_cycle(by_name: dict[str, LayerSpec], stuck: set[str]) -> list[str]:
    # Every stuck layer has a stuck input, so walking inputs from any of them must revisit a layer.
    start = min(stuck)
    seen: dict[str, int] = {}
    path: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(src for src in by_name[node].inputs if src in stuck)
    loop = path[seen[node]:]
    loop.reverse()  # report in data-flow order: producer -> consumer
    return loop + [loop[0]]


def _check_activation(spec: LayerSpec) -> None:
    """A layer's ``activation`` field, past the schema: the parameters its function takes."""
    value = spec.attrs.get("activation")
    try:
        parse_activation(value)
    except ActivationError as exc:
        field = f"activation.{exc.field}" if isinstance(value, dict) else "activation"
        raise ModelError(f"expected an activation, {exc}", layer=spec.name, field=field) from None


def parse_config(doc: Any) -> ModelSpec:
    """Validate a config document (already parsed from JSON) and return its :class:`ModelSpec`."""
    if not isinstance(doc, dict):
        raise ModelError(f"expected a JSON object at the top level, found {_found(doc)}")
    errors = sorted(_validator().iter_errors(doc), key=_error_order)
    if errors:
        raise _schema_error(doc, errors[0])
    layers = [LayerSpec(name=entry["name"], type=entry["type"], inputs=tuple(entry.get("inputs", ())),
                        attrs=LAYER_TYPES[entry["type"]].normalize(
                            {k: v for k, v in entry.items() if k not in ("name", "type", "inputs")}))
              for entry in doc["layers"]]
    for spec in layers:
        _check_activation(spec)
    outputs = list(doc["outputs"])
    order = _check_structure(layers, outputs)
    inputs = [spec.name for spec in order if spec.type == "input"]
    if not inputs:
        raise ModelError("the model has no layer of type 'input'", field="layers")
    tensors = doc.get("tensors", {})
    names = {spec.name for spec in order}
    for name, view in tensors.items():
        if view["layer"] not in names:
            raise ModelError(f"expected the name of a layer, found unknown layer {view['layer']!r}",
                             field=f"tensors.{name}.layer")
    return ModelSpec(name=doc.get("name", ""), layers={spec.name: spec for spec in order}, inputs=inputs,
                     outputs=outputs, weights=doc.get("weights"), seed=int(doc.get("seed", 0)),
                     output_layout=doc.get("output_layout", "NHWC"), document=doc, tensors=tensors)
