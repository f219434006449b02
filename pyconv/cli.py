"""The ``pyconv`` command line: run, summarise or profile a model config; convert ONNX models.

    pyconv run CONFIG [--input FILE.npy|IMAGE] [--preset NAME] [--threads N] [--repeat N]
    pyconv summary CONFIG
    pyconv profile CONFIG [--input ...] [--repeat N]
    pyconv convert MODEL.onnx -o OUT.json
    pyconv dashboard [RUNS ...] [-o dashboard.html] [--check [--threshold 5%]]
    pyconv peak [--threads 1,2]
    pyconv predict MODEL INPUTS... [--preset NAME] [--draft] [--top K] [--batch N] [--threads T] [--callers C]
                   [-o FILE] [--ray [ADDRESS]] [--actors A]

CONFIG may also be an ``.onnx`` file, imported on the fly (needs ``pip install pyconv[onnx]``);
``--input-shape 1,3,224,224`` sizes an ONNX input whose H and W are symbolic. Or the name of a
pretrained model (:mod:`pyconv.pretrained`, e.g. ``efficientnet-lite0``), built from the weights its
package ships.

Without ``--input`` the model gets :meth:`pyconv.graph.Model.example_input` (deterministic, image-like,
in [0, 1]); a pretrained model gets the photo of a cat that ships with pyconv. Images are read with
Pillow (``pip install pyconv[image]``) and preprocessed by a preset of :mod:`pyconv.preprocess`
(``--preset``; default: the one the model's metadata names, else ``torchvision``) at the input layer's
size and layout. ``run`` prints the top-5 classes of each output, by name (:mod:`pyconv.labels`) where
the model carries its class names, or has 1000 outputs and a preset is known (its own or
``--preset``). ``dashboard`` builds the benchmark page from saved pytest-benchmark
runs or judges the newest one (:mod:`pyconv.dashboard`); ``peak`` measures the machine's compute and
memory roofs (:mod:`pyconv.machine`); ``predict`` classifies files, folders and globs of images into a
table, CSV, JSON Lines or Parquet, locally or on Ray (:mod:`pyconv.predict`, docs/predict.md). Errors
print one line and a hint and exit with status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from .dashboard.command import add_arguments as _dashboard_arguments
from .dashboard.command import run as _dashboard
from .graph import Model, ModelError, load
from .labels import imagenet_labels, model_labels
from .machine import measure as _measure_peak
from .onnx import from_onnx
from .predict.rows import ACTIVATIONS
from .preprocess import PRESETS, ImageError, load_image, model_input, model_preset
from .pretrained import PRETRAINED, load_pretrained
from .threads import resolve_threads

__all__ = ["main"]

# Runs expected to take longer than this get a progress bar.
_PROGRESS_AFTER_SECONDS = 2.0


class _UsageError(Exception):
    """A problem with the command line itself (not the model); carries a hint."""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.hint = hint


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyconv", description="Run CNN model configs on the CPU with pyconv.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="model config (.json), an ONNX model (.onnx), or a pretrained model's name ("
                                      + ", ".join(PRETRAINED) + ")")
        p.add_argument("--weights", help="weights .npz (default: the config's, else seeded weights)")
        p.add_argument("--threads", type=int, help="thread count (default: OMP_NUM_THREADS, else all usable cores)")
        input_shape(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")

    def input_shape(p: argparse.ArgumentParser) -> None:
        p.add_argument("--input-shape", type=_shape, help="an ONNX model's input shape to convert at, e.g. "
                                                          "1,3,224,224 (needed where its H and W are symbolic)")

    def with_input(p: argparse.ArgumentParser, repeat: int) -> None:
        p.add_argument("--input", help="a .npy array (batch axis optional) or an image file (needs Pillow)")
        p.add_argument("--preset", choices=tuple(PRESETS),
                       help="how an image is resized and normalised (default: the model's own preset, else "
                            "torchvision); see pyconv.preprocess")
        p.add_argument("--repeat", type=int, default=repeat, help=f"timed runs (default: {repeat})")

    run = sub.add_parser("run", help="run a model: output shape, top-5 classes, latency")
    common(run)
    with_input(run, 10)
    summary = sub.add_parser("summary", help="per-layer table: type, strategy, output shape, parameters, MACs")
    common(summary)
    summary.add_argument("--batch", type=int, default=1, help="batch size for shapes and strategies (default: 1)")
    profile = sub.add_parser("profile", help="per-layer median time, GFLOP/s and time per strategy")
    common(profile)
    with_input(profile, 10)
    convert = sub.add_parser("convert", help="convert an ONNX model to a pyconv config (.json) and weights (.npz)")
    convert.add_argument("model", help="ONNX model (.onnx)")
    convert.add_argument("-o", "--output", required=True,
                         help="config to write (.json); the weights go beside it, as an .npz of the same stem")
    input_shape(convert)
    convert.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    dashboard = sub.add_parser("dashboard", help="benchmark dashboard (one HTML file) from saved runs; "
                                                 "--check: the regression gate")
    _dashboard_arguments(dashboard)
    peak = sub.add_parser("peak", help="measure the compute peak (pyconv's GEMM) and memory bandwidth")
    peak.add_argument("--threads", type=_counts, default=None,
                      help="comma-separated thread counts (default: 1 and the default thread count)")
    predict = sub.add_parser("predict", help="classify many images (files, folders, globs, URIs) into a table or "
                                             "a CSV / JSON Lines / Parquet file; --ray: on Ray")
    _predict_arguments(predict)
    input_shape(predict)
    return parser


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="MODEL", help="model config (.json), an ONNX model (.onnx), or a pretrained "
                                                   "model's name (" + ", ".join(PRETRAINED) + ")")
    p.add_argument("inputs", nargs="+", metavar="INPUTS",
                   help="image files, folders (searched recursively), globs (quoted: 'photos/**/*.jpg') or URIs")
    p.add_argument("--weights", help="weights .npz (default: the config's, else seeded weights)")
    p.add_argument("--preset", choices=tuple(PRESETS),
                   help="how an image is resized and normalised (default: the model's own preset, else "
                        "torchvision); see pyconv.preprocess")
    p.add_argument("--draft", action="store_true",
                   help="decode JPEGs at 1/2, 1/4 or 1/8 of their size where the preset's resize still gets its "
                        "size: faster for large photos, pixels a little off the preset's reference transform")
    p.add_argument("--top", type=int, default=5, help="classes per image (default: 5)")
    p.add_argument("--batch", type=int, default=16, help="images per model run (default: 16)")
    p.add_argument("--threads", type=int,
                   help="model threads per run (default: OMP_NUM_THREADS, else the usable cores shared out "
                        "among the runs: 1 each up to 8 cores; with --ray: per actor, 1)")
    p.add_argument("--callers", type=int,
                   help="model runs at once, each on its own batch with --threads threads (default: 1 with "
                        "--threads or OMP_NUM_THREADS, else one per usable core, at most 8)")
    p.add_argument("--workers", type=int, help="decoding threads (default: the usable cores, at most 4; "
                                               "with --ray: per actor, 2)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="auto",
                   help="softmax on the output: auto = unless a row already is a distribution (default: auto)")
    p.add_argument("-o", "--output", help="write the rows to FILE: .csv, .jsonl or .parquet (needs pyarrow); an "
                                          "existing FILE is resumed (default: a table on stdout)")
    p.add_argument("--overwrite", action="store_true", help="start -o FILE again instead of resuming it")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a local instance, or the cluster at ADDRESS (auto: the one this machine "
                        "joined with `ray start`)")
    p.add_argument("--actors", type=int, default=2, help="with --ray: pyconv actors, each loading the model once "
                                                         "(default: 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines on stderr")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive thread counts separated by commas, found {text!r}")
    return counts


def _load(args: argparse.Namespace) -> Model:
    if args.config in PRETRAINED and not Path(args.config).exists():
        if args.weights or args.input_shape:
            raise _UsageError("--weights and --input-shape apply to config and ONNX files; a pretrained model "
                              "brings its own weights and runs at any input size")
        return load_pretrained(args.config, threads=args.threads)
    if Path(args.config).suffix.lower() != ".onnx":
        if args.input_shape:
            raise _UsageError("--input-shape applies to ONNX models; a pyconv config declares its input shape",
                              hint="a model runs at other sizes too: pass an --input array of that size")
        return load(args.config, args.weights, threads=args.threads)
    if args.weights:
        raise _UsageError("--weights applies to pyconv configs; an ONNX model carries its own weights")
    return from_onnx(args.config, threads=args.threads, input_shape=args.input_shape)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes separated by commas, e.g. 1,3,224,224, found {text!r}") \
            from None


def _convert(args: argparse.Namespace) -> None:
    model = from_onnx(args.model, input_shape=args.input_shape)
    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise _UsageError(f"-o: expected a .json path for the config, found {args.output}")
    model.save(out)
    print(f"wrote {out} and {out.with_suffix('.npz')}: {len(model.spec.layers)} layers "
          f"({len(model.graph.nodes)} nodes after folding), inputs "
          + ", ".join(f"{n} {model.input_shape(n)}" for n in model.input_names)
          + f", outputs {', '.join(model.output_names)}")


def _read_input(model: Model, path: str, preset: Optional[str]) -> np.ndarray:
    if len(model.input_names) != 1:
        raise _UsageError(f"--input gives one array, but this model has {len(model.input_names)} inputs",
                          hint="run without --input to use the built-in example inputs")
    want = model.input_shape()
    file = Path(path)
    if not file.is_file():
        raise _UsageError(f"input file not found: {path}")
    if file.suffix.lower() == ".npy":
        array = np.load(file, allow_pickle=False)
        if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
            raise _UsageError(f"{file.name}: expected float32 (or float64/float16, converted), found {array.dtype}",
                              hint="convert it with x.astype(np.float32) / 255 or the scale your model was trained "
                                   "with, or pass the image file itself (PNG/JPEG, preprocessed by --preset)")
        return array[None] if array.shape == want[1:] else array
    return _read_image(file, model, preset)


def _image_preset(model: Model, preset: Optional[str]) -> str:
    return preset or model_preset(model) or "torchvision"


def _read_image(file: Path, model: Model, preset: Optional[str]) -> np.ndarray:
    try:
        layout, size = model_input(model)
    except ImageError as exc:
        raise _UsageError(f"an image can only feed an RGB image input: {exc}",
                          hint="pass a .npy array instead") from None
    return load_image(file, _image_preset(model, preset), layout, size)[None]


def _example_photo() -> Path:
    """The photo a pretrained model classifies without --input (CC0, see pyconv/data/chelsea.LICENSE)."""
    return Path(__file__).parent / "data" / "chelsea.jpg"


def _labels(model: Model, classes: int, preset: Optional[str]) -> Optional[list[str]]:
    own = model_labels(model)
    if own is not None:
        return own if len(own) == classes else None
    # ImageNet names mean something only for a model fed the way it was trained.
    return imagenet_labels() if classes == 1000 and (preset or model_preset(model)) else None


def _progress(total: int, enabled: bool) -> Callable[[Iterator[int]], Iterator[int]]:
    if not enabled:
        return lambda it: it
    try:
        from tqdm import tqdm
        return lambda it: tqdm(it, total=total, file=sys.stderr, unit="run", leave=False)
    except ImportError:
        pass

    def bar(it: Iterator[int]) -> Iterator[int]:
        for i in it:
            done = int(30 * i / total)
            print(f"\r[{'#' * done}{'.' * (30 - done)}] {i}/{total}", end="", file=sys.stderr, flush=True)
            yield i
        print("\r" + " " * 50 + "\r", end="", file=sys.stderr, flush=True)
    return bar


def _top5(name: str, y: np.ndarray, labels: Optional[list[str]] = None) -> Optional[str]:
    if y.ndim != 2 or y.shape[1] < 2:
        return None
    row = y[0].astype(np.float64)
    is_prob = bool(row.min() >= 0 and abs(row.sum() - 1.0) < 1e-3)
    order = np.argsort(-row, kind="stable")[:5]
    label = "p" if is_prob else "score"
    sample = " (sample 0)" if y.shape[0] > 1 else ""
    if labels is None:
        return f"top-5 of {name!r}{sample}: " + ", ".join(f"{i} ({label}={row[i]:.4g})" for i in order)
    width = max(len(labels[i]) for i in order)
    return f"top-5 of {name!r}{sample}:\n" + "\n".join(
        f"  {labels[i]:<{width}}  {label}={row[i]:.4f}  (class {i})" for i in order)


def _run(model: Model, args: argparse.Namespace) -> None:
    if args.repeat < 1:
        raise _UsageError(f"--repeat: expected a positive integer, found {args.repeat}")
    photo = args.input or (str(_example_photo()) if args.config in PRETRAINED else None)
    x = _read_input(model, photo, args.preset) if photo else model.example_input()
    t0 = time.perf_counter()
    y = model.run(x)
    first = time.perf_counter() - t0
    outputs = y if isinstance(y, dict) else {model.output_names[0]: y}
    inputs = x if isinstance(x, dict) else {model.input_names[0]: x}
    print(f"model {model.name or '(unnamed)'}: " + ", ".join(f"input {k} {v.shape}" for k, v in inputs.items())
          + f", {model.threads} thread(s)")
    if photo and Path(photo).suffix.lower() != ".npy":
        print(f"image {Path(photo).name}, preset {_image_preset(model, args.preset)}")
    for name, array in outputs.items():
        print(f"output {name!r}: shape {array.shape}")
        top = _top5(name, array, _labels(model, array.shape[-1], args.preset) if array.ndim == 2 else None)
        if top:
            print(top)
    times = []
    for _ in _progress(args.repeat, first * args.repeat > _PROGRESS_AFTER_SECONDS)(iter(range(args.repeat))):
        t0 = time.perf_counter()
        model.run(x)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * np.array(times)
    print(f"latency: median {np.median(ms):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms over {args.repeat} run(s) "
          f"(first run {1e3 * first:.2f} ms)")


def _profile(model: Model, args: argparse.Namespace) -> None:
    if args.repeat < 1:
        raise _UsageError(f"--repeat: expected a positive integer, found {args.repeat}")
    x = _read_input(model, args.input, args.preset) if args.input else None
    print(model.profile(x, repeat=args.repeat))


def _predict(args: argparse.Namespace) -> int:
    from .predict import Row, Skipped, iter_predict
    from .predict.progress import Progress
    from .predict.sources import expand
    from .predict.writers import TableWriter, Writer, open_writer

    for flag, value in (("--top", args.top), ("--batch", args.batch), ("--threads", args.threads),
                        ("--workers", args.workers), ("--actors", args.actors), ("--callers", args.callers)):
        if value is not None and value < 1:
            raise _UsageError(f"{flag}: expected a positive integer, found {value}")
    on_ray = args.ray is not None
    if args.actors != 2 and not on_ray:
        raise _UsageError("--actors applies to Ray runs", hint="add --ray (a local instance) or --ray auto")
    if args.callers is not None and on_ray:
        raise _UsageError("--callers applies to local runs", hint="on Ray, --actors sets the model runs at once")
    paths = expand(args.inputs)
    model = _load(args) if not on_ray else _load_for_ray(args)
    writer: Writer = (open_writer(args.output, args.top, overwrite=args.overwrite) if args.output
                      else TableWriter(sys.stdout, args.top))
    todo = [p for p in paths if p not in writer.done]
    if writer.done:
        print(f"pyconv predict: resuming {args.output}: {len(paths) - len(todo)} of {len(paths)} images already "
              "there", file=sys.stderr)
    progress = Progress(len(todo), enabled=not args.no_progress)
    try:
        with writer:
            for results in iter_predict(model, todo, expanded=True, preset=args.preset, top=args.top,
                                        batch=args.batch, threads=args.threads, activation=args.activation,
                                        workers=args.workers, callers=args.callers, actors=args.actors,
                                        draft=args.draft,
                                        ray=(args.ray or True) if on_ray else None):
                skipped = [r for r in results if isinstance(r, Skipped)]
                for r in skipped:
                    progress.write(f"pyconv predict: skipped {r.describe()}")
                rows = [r for r in results if isinstance(r, Row)]
                writer.write(rows)
                progress.update(len(rows), len(skipped))
    finally:
        progress.close()
    where = f" into {args.output}" if args.output else ""
    print(f"pyconv predict: {progress.done} images predicted{where}, {progress.skipped} skipped (unreadable), "
          f"{len(paths) - len(todo)} already done; {progress.rate:.1f} images/s over {progress.seconds:.1f} s",
          file=sys.stderr)
    return 0


def _load_for_ray(args: argparse.Namespace) -> Model:
    # The driver loads the model once, to check it and to ship its config and weights to the actors; its own
    # threads are never used for a batch.
    threads = args.threads
    args.threads = 1
    try:
        return _load(args)
    finally:
        args.threads = threads


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyconv`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "convert":
            _convert(args)
            return 0
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "peak":
            print(_measure_peak(args.threads or (1, resolve_threads())))
            return 0
        if args.command == "predict":
            return _predict(args)
        model = _load(args)
        if args.command == "run":
            _run(model, args)
        elif args.command == "summary":
            if args.batch < 1:
                raise _UsageError(f"--batch: expected a positive integer, found {args.batch}")
            print(model.summary(batch=args.batch))
        else:
            _profile(model, args)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error. Silence the flush at interpreter exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ModelError, _UsageError, OSError, ValueError, TypeError, ImportError) as exc:
        if args.debug:
            raise
        print(f"pyconv: error: {exc}", file=sys.stderr)
        hint = getattr(exc, "hint", None) or _hint_for(exc, args)
        if hint:
            print(f"pyconv: hint: {hint}", file=sys.stderr)
        return 2
    return 0


def _hint_for(exc: Exception, args: argparse.Namespace) -> Optional[str]:
    if isinstance(exc, FileNotFoundError):
        return "check the path (relative paths are taken from the current directory)"
    if isinstance(exc, ModelError):
        return "the model format is described in docs/model-format.md; --debug shows the traceback"
    return "--debug shows the traceback"


if __name__ == "__main__":
    sys.exit(main())
