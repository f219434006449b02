"""pyconv's OpenMP wait setting: GOMP_SPINCOUNT=1000 by default, never over a choice the user made."""
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


def test_default_spincount_is_set_at_import():
    assert _run({}) == ["1000", "GOMP_SPINCOUNT=1000"]


@pytest.mark.parametrize("env, expected", [
    ({"GOMP_SPINCOUNT": "77"}, ["77", "GOMP_SPINCOUNT=77"]),
    ({"OMP_WAIT_POLICY": "passive"}, ["None", "OMP_WAIT_POLICY=passive"]),
])
def test_a_users_choice_is_left_alone(env, expected):
    assert _run(env) == expected
