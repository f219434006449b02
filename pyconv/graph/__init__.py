"""pyconv's model runtime: JSON model configs loaded, checked, optimised, planned and run.

``load(config)`` returns a :class:`Model`; every problem with a config, its weights or an input is a
:class:`ModelError` naming the layer and field. See docs/model-format.md.
"""
from .errors import ModelError, UnknownTensorError
from .layers import LAYER_TYPES
from .model import Model, Profile, ProfileRow, load
from .planner import MemoryPlan

__all__ = ["LAYER_TYPES", "MemoryPlan", "Model", "ModelError", "Profile", "ProfileRow", "UnknownTensorError", "load"]
