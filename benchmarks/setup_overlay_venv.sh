#!/usr/bin/env bash
# An overlay venv with one optional extra's package on top of the project's venv, without
# touching it: the overlay's .pth file puts the project venv's site-packages after its own,
# so torch, ray, numpy, mpe2 come from the project venv and only the package's own
# dependencies are installed in the overlay. Usage:
#   bash benchmarks/setup_overlay_venv.sh REQUIREMENT OVERLAY [BASE]
#   e.g. bash benchmarks/setup_overlay_venv.sh vmas==1.5.2 /work/venv-vmas
# benchmarks/setup_jaxmarl_venv.sh and setup_vmas_venv.sh call it with their extras.
set -euo pipefail
REQUIREMENT=$1
OVERLAY=$2
BASE=${3:-/work/main/.venv}
python3.11 -m venv "$OVERLAY"
SITE=$("$OVERLAY/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$BASE/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$SITE/_base_venv.pth"
"$OVERLAY/bin/pip" install --dry-run "$REQUIREMENT" | tail -1   # what it would add
"$OVERLAY/bin/pip" install "$REQUIREMENT"
"$OVERLAY/bin/python" -c "import numpy, torch, ray; print('numpy', numpy.__version__, 'torch', torch.__version__, 'ray', ray.__version__)"
