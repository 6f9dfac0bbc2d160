#!/usr/bin/env bash
# Run the plugin's Ray compatibility checks against one Ray release (docs/ray_versions.md).
#
#   benchmarks/ray_range.sh RAY_VERSION VENV [WORKTREE]
#   e.g. benchmarks/ray_range.sh 2.56.0 ~/venv-ray-2.56.0
#
# Builds VENV (python3 -m venv) if it has no bin/python: torch 2.13.0 first (the CPU
# build; an unpinned torch pulls CUDA), then ray[rllib,tune]==RAY_VERSION and the runtime
# and test dependencies (pyproject's `test` extra), then this repo with --no-deps so that
# pip keeps RAY_VERSION rather than the pyproject pin. Runs the checks from a detached
# worktree of HEAD (committed code only) at WORKTREE (default /tmp/rllib_maddpg-ray-VERSION;
# removed on exit): the unit tests, tests/integration/test_algorithm.py, then
# tests/integration/test_cli.py, stopping at the first failure (non-zero exit).
# Set NICE="" to run without `nice -n 19`.
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,14p' "$0"; exit 2; }
version=$1 venv=$2
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
wt=${3:-/tmp/rllib_maddpg-ray-$version}
nice=${NICE-nice -n 19}

git -C "$repo" worktree add --detach "$wt" HEAD
trap 'git -C "$repo" worktree remove --force "$wt"' EXIT

if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
    $nice "$venv/bin/pip" install -q torch==2.13.0
    $nice "$venv/bin/pip" install -q "ray[rllib,tune]==$version" pettingzoo mpe2 gymnasium \
        numpy pyyaml pytest pillow wandb mlflow-skinny box2d
fi
$nice "$venv/bin/pip" install -q --no-deps -e "$wt"
installed=$("$venv/bin/python" -c "import ray; print(ray.__version__)")
[[ $installed == "$version" ]] || { echo "venv has ray $installed, not $version" >&2; exit 1; }

cd "$wt"
export PYTHONPATH=$wt
for check in "-m unit" tests/integration/test_algorithm.py tests/integration/test_cli.py; do
    echo "== ray $version: pytest $check"
    # shellcheck disable=SC2086  # $check is one marker expression or one path
    $nice "$venv/bin/python" -m pytest -x -q -p no:cacheprovider $check
done
echo "== ray $version: all three checks passed"
