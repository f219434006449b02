"""``pyconv predict`` on Ray Data: a local Ray instance (2 CPUs) gives the local run's rows, row for row,
skips the same unreadable images, and writes the same file. Skipped where Ray Data is not installed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pyconv[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")
pytest.importorskip("PIL.Image")

import pyconv  # noqa: E402
from pyconv import cli  # noqa: E402
from pyconv.predict import Skipped, iter_predict  # noqa: E402
from pyconv.predict.writers import read_rows  # noqa: E402
from test_predict import corrupt_images, toy_config, write_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Ray Data's own modules warn about their deprecated settings when the context is read.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance for the module: its start-up is the slow part. The workers import this checkout's
    pyconv, as the test process does."""
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray_photos")
    write_images(folder, 9)
    corrupt_images(folder / "bad")
    config = folder.parent / "toy.json"
    config.write_text(json.dumps(toy_config()))
    return config, folder


def test_ray_rows_equal_local_rows(local_ray, job):
    config, folder = job
    model = pyconv.load(config, threads=1)
    local = [r for chunk in iter_predict(model, folder, top=3, batch=4, threads=1) for r in chunk]
    on_ray = [r for chunk in iter_predict(model, folder, top=3, batch=4, threads=1, ray=True, actors=2)
              for r in chunk]
    assert on_ray == local
    assert sum(isinstance(r, Skipped) for r in on_ray) == 2


def test_ray_cli_writes_the_local_file(local_ray, job, tmp_path, capsys):
    config, folder = job
    args = ("predict", config, folder, "--top", 2, "--batch", 3, "--threads", 1)
    assert cli.main([str(a) for a in (*args, "-o", tmp_path / "local.csv")]) == 0
    assert cli.main([str(a) for a in (*args, "-o", tmp_path / "ray.csv", "--ray", "--actors", 2)]) == 0
    err = capsys.readouterr().err
    assert "2 skipped (unreadable)" in err
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(list(read_rows(tmp_path / "ray.csv"))) == 9
