#!/usr/bin/env bash
# A venv in which pettingzoo.sisl.waterworld_v4 imports (it exists only in
# PettingZoo <= 1.25 and needs pymunk<7), leaving the project's .venv as it is:
# the new venv's own site-packages (PettingZoo 1.25, pymunk 6) comes first on
# sys.path and shadows the main venv's PettingZoo 1.27; everything else (ray,
# torch, numpy, rllib_maddpg's dependencies) comes from the main venv via a .pth.
#
#   benchmarks/setup_waterworld_venv.sh [MAIN_VENV] [NEW_VENV]
#   PYTHONPATH=$PWD /work/venv-pz125/bin/python benchmarks/third_party.py --env waterworld ...
set -euo pipefail
MAIN_VENV=${1:-/work/main/.venv}
NEW_VENV=${2:-/work/venv-pz125}
PY=$(readlink -f "$MAIN_VENV/bin/python3")  # the same interpreter as the main venv (3.11)
"$PY" -m venv "$NEW_VENV"
SITE=$("$MAIN_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
NEW_SITE=$("$NEW_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$SITE" > "$NEW_SITE/main-venv.pth"
"$NEW_VENV/bin/pip" install --no-deps pettingzoo==1.25.0 'pymunk<7'
"$NEW_VENV/bin/python" -c "import pettingzoo, pymunk; from pettingzoo.sisl import waterworld_v4; print('pettingzoo', pettingzoo.__version__, 'pymunk', pymunk.version)"
