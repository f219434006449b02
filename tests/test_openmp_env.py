"""show_config reports the OpenMP wait setting in force, and pyconv never overrides a user's choice."""
import os
import subprocess
import sys

import pytest

_PROBE = "import os, pyconv; print(os.environ.get('GOMP_SPINCOUNT'), pyconv.build_info()['openmp_wait'])"


def _run(env_updates):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(env_updates)
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.parametrize("env, expected", [
    ({}, ["None", "GOMP_SPINCOUNT=libgomp", "default"]),
    ({"GOMP_SPINCOUNT": "77"}, ["77", "GOMP_SPINCOUNT=77"]),
    ({"OMP_WAIT_POLICY": "passive"}, ["None", "OMP_WAIT_POLICY=passive"]),
])
def test_wait_setting_is_reported_and_left_alone(env, expected):
    assert _run(env) == expected
