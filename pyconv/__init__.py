"""pyconv: fast CPU inference for convolutional networks (NHWC, float32, numpy in and out).

Kernels: standard, group, depthwise, pointwise and depthwise-separable convolution (``pyconv.conv``),
pooling and elementwise operators (``pyconv.ops``).  Operators (``Conv2D``, ...) pack their weights once;
the functions (``conv2d``, ...) run one call.  Models: ``pyconv.load(config)`` (``pyconv.graph``);
ONNX files: ``pyconv.from_onnx(path)`` (``pyconv.onnx``).  Photos: ``pyconv.load_image`` and the
presets of ``pyconv.preprocess``, class names in ``pyconv.labels``, pretrained classifiers
``pyconv.load_pretrained(name)`` (``pyconv.pretrained``).  Many images: ``pyconv.predict(model, "photos/")``
(``pyconv.predict``, also ``pyconv predict``).  The instruction-set level the kernels run
on is chosen at import (``pyconv.isa``; ``PYCONV_ISA`` caps it).
"""
__version__ = "0.1.0"

from . import isa
from .config import build_info, show_config
from .conv import (Bound, Conv2D, Dense, DepthwiseConv2D, PointwiseConv2D, SeparableConv2D, conv2d, dense,
                   depthwise_conv2d, explain_conv2d, pointwise_conv2d, separable_conv2d)
from .graph import MemoryPlan, Model, ModelError, Profile, UnknownTensorError, load
from .labels import imagenet_labels
from .onnx import OnnxImportError, from_onnx
from .ops import (activation, add, avg_pool2d, channel_shuffle, concat, divide, global_avg_pool2d, max_pool2d,
                  multiply, nchw_to_nhwc, nhwc_to_nchw, prelu, resize, scale_shift, slice_axis, softmax, subtract)
from .preprocess import ImageError, load_image
from .pretrained import load_pretrained
from .threads import resolve_threads
from .predict import predict  # the function; the modules stay reachable as pyconv.predict.<module> imports

__all__ = [
    "__version__", "isa", "build_info", "show_config", "resolve_threads",
    "Conv2D", "DepthwiseConv2D", "PointwiseConv2D", "SeparableConv2D", "Dense", "Bound",
    "conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "dense", "explain_conv2d",
    "max_pool2d", "avg_pool2d", "global_avg_pool2d", "add", "subtract", "multiply", "divide", "scale_shift",
    "concat", "slice_axis", "channel_shuffle", "softmax", "resize", "nchw_to_nhwc", "nhwc_to_nchw", "activation",
    "prelu",
    "load", "Model", "ModelError", "UnknownTensorError", "MemoryPlan", "Profile",
    "from_onnx", "OnnxImportError",
    "load_pretrained", "load_image", "ImageError", "imagenet_labels",
    "predict",
]
