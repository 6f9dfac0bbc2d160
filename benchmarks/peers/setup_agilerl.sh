#!/usr/bin/env bash
# Set up AgileRL 2.58 (the peer MADDPG of benchmarks/peers/bench_agilerl.py) in its own venv,
# as /work/shared/benchmarks/README.md describes. Its own venv: AgileRL pins libraries
# (gymnasium, numpy, ...) that would clash with Ray RLlib's in the project's environment.
#
#   bash benchmarks/peers/setup_agilerl.sh [VENV]      # default VENV: /work/.venv-agilerl
#
# Idempotent: an existing venv is reused and pip only installs what is missing. torch is
# pinned to 2.13.0 (the CPU build, as the project uses) in every step: an unpinned torch,
# pulled in by agilerl or peft, would be a multi-GB CUDA build.
set -euo pipefail

VENV="${1:-/work/.venv-agilerl}"
PY="${PYTHON:-python3}"
TORCH="torch==2.13.0"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)

"${PIP[@]}" "$TORCH"
"${PIP[@]}" agilerl==2.58.0 mpe2==1.1.1 "$TORCH"
"${PIP[@]}" peft "$TORCH"   # agilerl.algorithms imports peft

# Check: the imports bench_agilerl.py needs, and the CPU torch.
"$VENV/bin/python" - <<'PY'
import torch, mpe2, agilerl  # noqa: F401
from agilerl.algorithms import MADDPG  # noqa: F401
from agilerl.vector import PzDummyVecEnv  # noqa: F401
from importlib.metadata import version
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"ok: agilerl {version('agilerl')}, mpe2 {version('mpe2')}, torch {torch.__version__}")
PY
echo "AgileRL venv ready: $VENV/bin/python"
