#!/usr/bin/env bash
# An overlay venv with JaxMARL 0.2.0 (the jaxmarl extra) on top of the project's venv
# (benchmarks/setup_overlay_venv.sh). Checked with `pip install --dry-run`: it adds jax/jaxlib
# 0.10.2, flax, chex, gymnax, optax, ... and replaces none of the project venv's packages
# (numpy 2.4.6, torch 2.13, ray 2.60 stay). Usage:
#   bash benchmarks/setup_jaxmarl_venv.sh [/work/main/.venv] [/work/venv-jax]
#   PYTHONPATH=$PWD /work/venv-jax/bin/python -m pytest tests/unit/test_jaxmarl_mpe.py
set -euo pipefail
bash "$(dirname "$0")/setup_overlay_venv.sh" jaxmarl==0.2.0 "${2:-/work/venv-jax}" "${1:-/work/main/.venv}"
