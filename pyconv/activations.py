"""The activation functions: their names and parameters, the parsing and validation of what operators,
model configs and the ONNX importer give for one, the code and parameters the C kernels take for it
(ukernels/common.h's PYCONV_ACT_*), and its config form.

An activation is given as None, a function name, or a mapping ``{"function": name, "alpha": ..,
"beta": .., "min": .., "max": ..}`` holding the parameters its function takes:

    relu          max(x, 0)
    relu6         min(max(x, 0), 6)
    clip          min(max(x, min), max); min and max optional (null: no bound on that side)
    sigmoid       1 / (1 + exp(-x))
    hard_sigmoid  clip(alpha * x + beta, 0, 1); alpha 0.2, beta 0.5 by default (ONNX's; PyTorch's
                  hardsigmoid is alpha 1/6)
    hard_swish    x * relu6(x + 3) / 6
    silu          x * sigmoid(x)
    leaky_relu    x if x >= 0 else alpha * x; alpha 0.01 by default
    tanh          tanh(x)
    gelu          x * Phi(x), Phi the standard normal CDF: 0.5 x (1 + erf(x / sqrt(2)))
    gelu_tanh     0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), GELU's tanh approximation
    elu           x if x > 0 else alpha * (exp(x) - 1); alpha 1.0 by default
    selu          beta * elu(x, alpha); ONNX's defaults alpha 1.67326..., beta (ONNX's gamma) 1.05070...
    softplus      log(1 + exp(x))
    mish          x * tanh(softplus(x))

Every function passes NaN through and treats +-inf as PyTorch does (gelu(+inf) is NaN there, and
here).  relu and relu6 are fused into the micro-kernels' stores; the others are applied by the drivers to each tile or row right after a kernel
wrote it (while it is in cache).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

__all__ = ["FUNCTIONS", "PARAM_FIELDS", "Activation", "ActivationError", "ActivationLike", "compose", "config_of",
           "kernel_args", "of_layer", "parse"]

# Function name -> (code in ukernels/common.h, its parameters with their defaults).
_SPECS: Dict[str, Tuple[int, Dict[str, Optional[float]]]] = {
    "relu": (1, {}),
    "relu6": (2, {}),
    "clip": (3, {"min": None, "max": None}),
    "sigmoid": (4, {}),
    "hard_sigmoid": (5, {"alpha": 0.2, "beta": 0.5}),
    "hard_swish": (6, {}),
    "silu": (7, {}),
    "leaky_relu": (8, {"alpha": 0.01}),
    "tanh": (9, {}),
    "gelu": (10, {}),
    "gelu_tanh": (11, {}),
    "elu": (12, {"alpha": 1.0}),
    "selu": (13, {"alpha": 1.6732632423543772, "beta": 1.0507009873554805}),
    "softplus": (14, {}),
    "mish": (15, {}),
}
FUNCTIONS: Tuple[str, ...] = tuple(_SPECS)
# Every parameter any function takes: the fields an ``activation`` layer may carry besides its function.
PARAM_FIELDS = ("alpha", "beta", "min", "max")


class ActivationError(ValueError):
    """An activation that is not one: ``field`` names what is wrong ("function", "alpha", ...)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Activation:
    """One activation function with its parameters (None for those it does not take; clip's absent
    bounds are None)."""
    function: str
    alpha: Optional[float] = None
    beta: Optional[float] = None
    min: Optional[float] = None
    max: Optional[float] = None

    @property
    def code(self) -> int:
        """The C kernels' code (ukernels/common.h)."""
        return _SPECS[self.function][0]

    @property
    def params(self) -> Dict[str, Optional[float]]:
        """The parameters this function takes, by name."""
        return {name: getattr(self, name) for name in _SPECS[self.function][1]}

    def kernel_args(self) -> Tuple[int, float, float]:
        """(code, alpha, beta) as the drivers take them: clip's bounds become alpha and beta (+-inf
        where absent); a clip to [0, 6] or [0, inf) runs as the fused relu6 or relu."""
        if self.function == "clip":
            lo = -math.inf if self.min is None else self.min
            hi = math.inf if self.max is None else self.max
            # Same results for every input, NaN included (comparisons against x in both).
            if lo == 0.0 and hi == 6.0:
                return (2, 0.0, 0.0)
            if lo == 0.0 and hi == math.inf:
                return (1, 0.0, 0.0)
            return (self.code, lo, hi)
        return (self.code, self.alpha or 0.0, self.beta or 0.0)

    @property
    def fused(self) -> Optional[str]:
        """The name of the fused function (relu or relu6) this computes exactly, else None."""
        code = self.kernel_args()[0]
        return {1: "relu", 2: "relu6"}.get(code)

    def config(self) -> Union[str, Dict[str, Any]]:
        """The config form: the bare name when every parameter has its default, else a mapping."""
        params = self.params
        if all(params[k] == default for k, default in _SPECS[self.function][1].items()):
            return self.function
        return {"function": self.function, **params}

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        return f"{self.function}({params})" if params else self.function


ActivationLike = Union[None, str, Mapping, Activation]


def _number(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ActivationError(f"{where}: {field!r} must be a number, got {value!r}", field)
    v = float(value)
    if not math.isfinite(v):
        raise ActivationError(f"{where}: {field!r} must be finite, got {value!r}", field)
    return v


def parse(value: ActivationLike, name: str = "activation") -> Optional[Activation]:
    """``value`` (None, a function name, a mapping, or an Activation) as an Activation, or None.

    Raises ActivationError (a ValueError) naming ``name`` and the offending field for an unknown
    function, an unknown or misplaced parameter, or a parameter that is not a finite number.
    """
    if value is None or isinstance(value, Activation):
        return value
    if isinstance(value, str):
        if value not in _SPECS:
            raise ActivationError(f"{name} must be None, one of {', '.join(FUNCTIONS)} or a mapping with "
                                  f"'function', got {value!r}", "function")
        return Activation(value, **_SPECS[value][1])
    if not isinstance(value, Mapping):
        raise ActivationError(f"{name} must be None, a function name or a mapping, got {value!r}", "function")
    function = value.get("function")
    if not isinstance(function, str) or function not in _SPECS:
        raise ActivationError(f"{name}: 'function' must be one of {', '.join(FUNCTIONS)}, got {function!r}",
                              "function")
    where = f"{name} {function}"
    defaults = _SPECS[function][1]
    params: Dict[str, Optional[float]] = dict(defaults)
    for key, v in value.items():
        if key == "function":
            continue
        if key not in defaults:
            takes = ", ".join(defaults) if defaults else "no parameters"
            raise ActivationError(f"{where}: unknown field {key!r} ({function} takes {takes})", str(key))
        if v is None and function == "clip":
            params[key] = None
            continue
        params[key] = _number(v, key, where)
    return Activation(function, **params)


def config_of(activation: ActivationLike) -> Union[None, str, Dict[str, Any]]:
    """The config form of an activation (None, a name, or a mapping)."""
    act = parse(activation)
    return None if act is None else act.config()


def kernel_args(activation: ActivationLike, name: str = "activation") -> Tuple[int, float, float]:
    """The drivers' (code, alpha, beta) for an activation; (0, 0, 0) for None."""
    act = parse(activation, name)
    return (0, 0.0, 0.0) if act is None else act.kernel_args()


def of_layer(attrs: Mapping[str, Any], name: str = "activation") -> Activation:
    """The activation an ``activation`` layer's config fields spell (``function`` and its parameters;
    a null parameter is an absent one)."""
    act = parse({"function": attrs.get("function"),
                 **{k: attrs[k] for k in PARAM_FIELDS if attrs.get(k) is not None}}, name)
    assert act is not None
    return act


def compose(first: ActivationLike, then: ActivationLike) -> Tuple[bool, Optional[Activation]]:
    """``(True, a)`` where the single activation ``a`` (None: none) computes ``then(first(x))`` exactly,
    ``(False, None)`` where no single one does: relu and relu6 compose (relu6 absorbs relu), and
    anything composes with nothing."""
    f, g = parse(first), parse(then)
    if f is None or g is None:
        return True, f if g is None else g
    if f.fused and g.fused:
        return True, parse("relu6" if "relu6" in (f.fused, g.fused) else "relu")
    return False, None
