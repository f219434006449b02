"""Throughput of ``pyconv predict`` (a script, not a pytest-benchmark module; see benchmarks/README.md).

    python benchmarks/bench_predict.py [--images 1000] [--folder /tmp/pyconv_photos] [--threads 2]
                                       [--batch 16] [--rounds 3] [--ray-images 600] [--no-ray]

1. A folder of real photos: the colour photos scikit-image ships (astronaut, chelsea, coffee, rocket,
   immunohistochemistry, retina), cut and resized (random crops and flips, 200-500 px, JPEG quality
   80-95; seeded) into ``--images`` JPEG files, made once under ``--folder`` (never in the repository).
2. The CPU ``load_image`` takes per photo: over 200 of them, and for one 4000x3000 JPEG (made once beside
   the folder) with and without ``draft=True``.
3. Local: images/s of the prediction pipeline (the one ``pyconv predict`` runs: decoding on a thread pool
   overlapped with the model) over that folder, MobileNet v2 (``models/mobilenet_v2.json``, seeded
   weights), with 1 caller x ``--threads`` threads and with ``--threads`` callers x 1 thread, each against
   the model's own throughput in the same layout: ``model.run`` by as many callers with as many threads
   on one batch of the same size, already preprocessed, repeated, measured just before and just after
   each pipeline run (their mean is the reference, so that a neighbour's burst on a shared machine moves
   both sides of a ratio). ``--rounds`` rounds, and the median ratio, which says how much of the
   decoding is hidden (target >= 90%). ``pyconv predict``'s default, with neither ``--threads`` nor
   ``--callers`` (nor ``OMP_NUM_THREADS``), is the second layout: one single-threaded run per usable core.
4. Ray (when installed): a local instance with 2 CPUs, 2 actors x 1 thread against 1 actor x 1 thread over
   ``--ray-images`` of the photos (target >= 1.6x). Rates are taken from the first batch back to the last,
   so Ray's start-up and the actors' model loading are left out.

Needs Pillow and scikit-image. The figures of a shared machine move with the other processes on it:
run it on an idle one for claims.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyconv  # noqa: E402
from pyconv.predict import iter_predict  # noqa: E402
from pyconv.predict.sources import expand  # noqa: E402
from pyconv.preprocess import load_image, model_input  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina")


def make_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` JPEG files cut from scikit-image's photos (kept when already there)."""
    from PIL import Image
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(str(p) for p in folder.glob("*.jpg"))
    if len(existing) >= count:
        return existing[:count]
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    for i in range(count):
        image = sources[i % len(sources)]
        w, h = image.size
        cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image.crop((left, top, left + cw, top + ch))
        side = int(rng.integers(200, 501))
        crop = crop.resize((side, max(1, round(side * ch / cw))), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(folder / f"photo_{i:05d}.jpg", quality=int(rng.integers(80, 96)))
    return sorted(str(p) for p in folder.glob("*.jpg"))[:count]


def model_rate(model: pyconv.Model, paths: list[str], batch: int, callers: int, threads: int,
               seconds: float = 3.0) -> float:
    """Images/s of model.run on one preprocessed batch of the photos, repeated by ``callers`` threads at
    once, each run with ``threads`` threads."""
    layout, size = model_input(model)
    x = np.stack([load_image(p, layout=layout, size=size) for p in paths[:batch]])
    model.run(x, threads=threads)
    runs = [0] * callers
    stop = time.perf_counter() + seconds

    def repeat(caller: int) -> None:
        while time.perf_counter() < stop:
            model.run(x, threads=threads)
            runs[caller] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=repeat, args=(caller,)) for caller in range(callers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(runs) * batch / (time.perf_counter() - start)


def make_large_photo(path: Path) -> str:
    """A 4000x3000 JPEG (scikit-image's astronaut enlarged), as a phone takes them (kept when already there)."""
    from PIL import Image
    import skimage.data

    if not path.exists():
        Image.fromarray(skimage.data.astronaut()).resize((4000, 3000), Image.BICUBIC).save(path, quality=90)
    return str(path)


def preprocessing_cpu(model: pyconv.Model, paths: list[str], passes: int = 3, draft: bool = False) -> float:
    """CPU seconds ``load_image`` takes per photo for the model's input, best of ``passes`` passes."""
    layout, size = model_input(model)
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        for path in paths:
            load_image(path, layout=layout, size=size, draft=draft)
        best = min(best, (time.process_time() - start) / len(paths))
    return best


def pipeline_rate(model, paths: list[str], **options) -> tuple[float, int]:
    """Images/s of the pipeline from its first batch back to its last (start-up left out), and images."""
    first = None
    counted = 0
    for results in iter_predict(model, paths, expanded=True, **options):
        if first is None:
            first = time.perf_counter()
            continue
        counted += len(results)
    return counted / (time.perf_counter() - first), counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--folder", default="/tmp/pyconv_photos")
    parser.add_argument("--model", default=str(REPO / "models" / "mobilenet_v2.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray-images", type=int, default=600)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    paths = make_photos(Path(args.folder), args.images)
    assert expand(args.folder)[:len(paths)] == paths
    print(f"{len(paths)} photos in {args.folder}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"pyconv level {pyconv.isa.active()}")
    model = pyconv.load(args.model, threads=args.threads)
    print(f"decoding and preprocessing: {preprocessing_cpu(model, paths[:200]) * 1e3:.2f} ms of CPU a photo "
          f"(load_image on one thread, best of 3 passes over {min(200, len(paths))} photos)")
    large = make_large_photo(Path(args.folder).parent / "pyconv_large_photo.jpg")
    print(f"a 4000x3000 photo: {preprocessing_cpu(model, [large]) * 1e3:.1f} ms of CPU, "
          f"{preprocessing_cpu(model, [large], draft=True) * 1e3:.1f} ms with draft=True")
    layouts = ((1, args.threads), (args.threads, 1)) if args.threads > 1 else ((1, 1),)
    ratios: dict[tuple[int, int], list[float]] = {layout: [] for layout in layouts}
    for round_ in range(1, args.rounds + 1):
        line = [f"round {round_} (load {os.getloadavg()[0]:.2f})"]
        for callers, threads in layouts:
            before = model_rate(model, paths, args.batch, callers, threads)
            pipeline, _ = pipeline_rate(model, paths, batch=args.batch, threads=threads, callers=callers)
            after = model_rate(model, paths, args.batch, callers, threads)
            alone = (before + after) / 2
            ratios[(callers, threads)].append(pipeline / alone)
            line.append(f"{callers} caller(s) x {threads} thread(s): model.run alone {before:.1f} and {after:.1f}, "
                        f"pipeline {pipeline:.1f} images/s ({100 * pipeline / alone:.0f}%)")
        print("; ".join(line))
    for (callers, threads), values in ratios.items():
        print(f"pipeline {callers} caller(s) x {threads} thread(s) / model.run alone: median "
              f"{100 * float(np.median(values)):.0f}% over {len(values)} round(s) (target >= 90%)")
    if args.no_ray:
        return
    try:
        import ray
    except ImportError:
        print("ray: not installed (pip install 'pyconv[ray]'), left out")
        return
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    subset = paths[:args.ray_images]
    one, _ = pipeline_rate(model, subset, batch=args.batch, threads=1, ray=True, actors=1)
    two, _ = pipeline_rate(model, subset, batch=args.batch, threads=1, ray=True, actors=2)
    print(f"ray, {len(subset)} photos, batch {args.batch}: 1 actor x 1 thread {one:.1f} images/s, 2 actors x 1 "
          f"thread {two:.1f} images/s: {two / one:.2f}x (target >= 1.6x)")
    ray.shutdown()


if __name__ == "__main__":
    main()
