#!/usr/bin/env bash
# An overlay venv with VMAS 1.5.2 (the vmas extra) on top of the project's venv
# (benchmarks/setup_overlay_venv.sh). It adds gym 0.26, pyglet and a newer setuptools in the
# overlay and replaces none of the project venv's packages. Usage:
#   bash benchmarks/setup_vmas_venv.sh [/work/main/.venv] [/work/venv-vmas]
#   PYTHONPATH=$PWD /work/venv-vmas/bin/python -m pytest tests/unit/test_vmas_env.py tests/integration/test_batched_envs.py
set -euo pipefail
bash "$(dirname "$0")/setup_overlay_venv.sh" vmas==1.5.2 "${2:-/work/venv-vmas}" "${1:-/work/main/.venv}"
