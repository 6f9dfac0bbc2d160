#!/usr/bin/env bash
# An overlay venv with JaxMARL 0.2.0 on top of the project's venv, without touching it:
# the overlay's .pth file puts the project venv's site-packages after its own, so torch,
# ray, numpy, mpe2 come from the project venv and only JaxMARL's own dependencies
# (jax/jaxlib 0.10.2, flax, chex, gymnax, optax, ...) are installed in the overlay.
# Checked with `pip install --dry-run`: it replaces none of the project venv's packages
# (numpy 2.4.6, torch 2.13, ray 2.60 stay). Usage:
#   bash benchmarks/setup_jaxmarl_venv.sh [/work/main/.venv] [/work/venv-jax]
#   PYTHONPATH=$PWD /work/venv-jax/bin/python -m pytest tests/unit/test_jaxmarl_mpe.py
set -euo pipefail
BASE=${1:-/work/main/.venv}
OVERLAY=${2:-/work/venv-jax}
python3.11 -m venv "$OVERLAY"
SITE=$("$OVERLAY/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$BASE/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$SITE/_base_venv.pth"
"$OVERLAY/bin/pip" install --dry-run jaxmarl==0.2.0 | tail -1   # what it would add
"$OVERLAY/bin/pip" install jaxmarl==0.2.0
"$OVERLAY/bin/python" -c "import jax, jaxmarl, numpy, torch, ray; print('jax', jax.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__, 'ray', ray.__version__)"
