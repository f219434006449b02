# Shell helpers shared by the emulated CI jobs (.ci/aarch64, .ci/avx2-only); sourced, not run.
# Expects `set -euo pipefail` in the caller.

CI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI_T0=$SECONDS

# A timed section header: "=== [  12s] what".
ci_step() { printf '\n=== [%4ss] %s\n' "$((SECONDS - CI_T0))" "$*"; }

# ci_need CMD:PACKAGE ...: apt-get install the packages whose command is missing (nothing if none is).
ci_need() {
    local want=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || want+=("${pair#*:}")
    done
    ((${#want[@]})) || return 0
    echo "apt-get install ${want[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

# ci_copy_tree DEST: the project's tracked and untracked-but-not-ignored files, without build outputs
# (an in-tree build/ could hold objects compiled with other flags, which setuptools would reuse).
ci_copy_tree() {
    rm -rf "$1" && mkdir -p "$1"
    if git -C "$CI_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$CI_ROOT" ls-files -z --cached --others --exclude-standard \
            | (cd "$CI_ROOT" && tar --null -T - -cf - 2>/dev/null) | tar -C "$1" -xf -
    else
        tar -C "$CI_ROOT" --exclude=build --exclude='*.so' --exclude='*.egg-info' --exclude=.git -cf - . \
            | tar -C "$1" -xf -
    fi
}

# pip's output without the warnings about unusable index locations (exit status kept by pipefail).
ci_quiet_pip() { grep -v 'is ignored: it is neither' || true; }

# ci_pip_cached PYTHON WHEELDIR TARGET [platform options] -- REQUIREMENT ...: install (into site dir
# TARGET, or PYTHON's environment if TARGET is -) from the wheel cache; only if that fails, download
# into the cache first, so that later runs need no network.
ci_pip_cached() {
    local py=$1 wheels=$2 target=$3 opts=() into=()
    shift 3
    while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    [[ $target == - ]] || into=(--target "$target" --upgrade)
    mkdir -p "$wheels"
    local pip=("$py" -m pip -q --disable-pip-version-check)
    if ! "${pip[@]}" install --no-index --find-links "$wheels" "${into[@]}" "${opts[@]}" "$@" >/dev/null 2>&1; then
        # (the filter drops a warning about pip index locations configured on some hosts)
        "${pip[@]}" download --only-binary=:all: -d "$wheels" "${opts[@]}" "$@" 2>&1 | ci_quiet_pip
        "${pip[@]}" install --no-index --find-links "$wheels" "${into[@]}" "${opts[@]}" "$@" 2>&1 | ci_quiet_pip
    fi
}
