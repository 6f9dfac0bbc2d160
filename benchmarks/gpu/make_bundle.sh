#!/usr/bin/env bash
# Downloads, HERE (a machine with a package index), the cp312 manylinux wheels the
# GPU device machine lacks for benchmarks/gpu/run.sh, into <repo>/.whl/ (ignored
# through .git/info/exclude; the device tool's `carry: [".whl"]` takes it along).
#
#     bash benchmarks/gpu/make_bundle.sh [PIP]      # PIP: a pip that can download (default: python3 -m pip)
#
# The device image (/work/.library/device/KINDS.md) has Python 3.12, torch, numpy,
# pandas, scipy, pyarrow, pyyaml, msgpack, protobuf, click, filelock, requests,
# attrs, absl-py, wrapt, cloudpickle, fsspec, ... but no ray, gymnasium,
# pettingzoo or mpe2. The list below is what `import rllib_maddpg, ray.rllib`,
# mpe2's simple_spread and benchmarks/throughput.py needed on top of that list
# (found by running them in a venv holding only the image's packages plus these):
#   ray              without ray/jars (Java, 30.7 MB compressed; Python never reads it)
#   jsonschema, jsonschema-specifications, referencing, rpds-py   (ray's runtime_env)
#   pydantic, pydantic-core, annotated-types, typing-inspection   (ray.train.v2, imported by ray.rllib)
#   gymnasium, farama-notifications, dm-tree, lz4, ormsgpack, tensorboardx  (ray[rllib])
#   pettingzoo, mpe2, pygame-ce (mpe2 imports pygame at module level)
#   typing-extensions  pydantic-core needs >= 4.14.1; the image's version is not recorded
# Versions are /work/main/.venv's (Python 3.11 here), built for cp312.
# Wheels for Python 3.12 cannot be imported here: run.sh on the device is their first test.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
DEST="$ROOT/.whl"
PIP=${1:-python3 -m pip}

WHEELS=(
  ray==2.60.0
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  gymnasium==1.2.2 farama-notifications==0.0.6 dm-tree==0.1.10 lz4==4.4.5 ormsgpack==1.13.1
  tensorboardx==2.6.5
  pettingzoo==1.27.0 mpe2==1.1.1 pygame-ce==2.5.8
  typing-extensions==4.16.0
)
# Pure-Python packages published as sources only, built into py3 wheels here (run.sh's
# batched_env part: VMAS's simple_spread, stepped B copies per call; gym is VMAS's import).
SOURCE_ONLY=(vmas==1.5.2 gym==0.26.2 gym-notices==0.0.8)

# .git/info/exclude is shared by all worktrees of the repository.
EXCLUDE="$(git -C "$ROOT" rev-parse --git-common-dir)/info/exclude"
case "$EXCLUDE" in /*) ;; *) EXCLUDE="$ROOT/$EXCLUDE" ;; esac
mkdir -p "$(dirname "$EXCLUDE")"
grep -qxF '/.whl/' "$EXCLUDE" 2>/dev/null || echo '/.whl/' >> "$EXCLUDE"

mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  "${PLATFORMS[@]}" -d "$TMP/raw" "${WHEELS[@]}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
# pip skips abi-less pure wheels with --abi cp312 on some versions: fetch any still missing without it
for spec in "${WHEELS[@]}"; do
  name=${spec%%==*}; pat=$(echo "$name" | tr '-' '_')
  ls "$TMP/raw" | grep -qi "^${pat}-" && continue
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$TMP/raw" "$spec"
done

$PIP wheel -q --no-deps -w "$TMP/raw" "${SOURCE_ONLY[@]}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true

rm -f "$DEST"/*.whl
# Trimmed to fit the 64 MiB carry limit (repack_wheel.py keeps RECORD consistent):
#   ray: ray/jars (Java), the dashboard's web client (include_dashboard=False), and the
#        symbol tables of its three large ELF files (strip --strip-unneeded; about 4 MiB)
#   pygame-ce: its docs, examples and tests (mpe2 only imports pygame; it never renders here)
for whl in "$TMP"/raw/*.whl; do
  case "$(basename "$whl")" in
    ray-*)
      python3 "$(dirname "$0")/repack_wheel.py" "$whl" "$DEST/$(basename "$whl")" \
        --drop ray/jars/ ray/dashboard/client/build/ \
        --strip ray/_raylet.so ray/core/src/ray/gcs/gcs_server ray/core/src/ray/raylet/raylet ;;
    pygame_ce-*)
      python3 "$(dirname "$0")/repack_wheel.py" "$whl" "$DEST/$(basename "$whl")" \
        --drop pygame/docs/ pygame/examples/ pygame/tests/ ;;
    *) cp "$whl" "$DEST/" ;;
  esac
done

count=$(ls "$DEST"/*.whl | wc -l)
if [ "$count" -ne $(( ${#WHEELS[@]} + ${#SOURCE_ONLY[@]} )) ]; then
  echo "make_bundle.sh: expected $(( ${#WHEELS[@]} + ${#SOURCE_ONLY[@]} )) wheels, got $count" >&2; ls "$DEST" >&2; exit 1
fi
ls -l "$DEST"
wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
tree=$(cd "$ROOT" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "wheels: $count files, $((wheels / 1024 / 1024)) MiB ($wheels bytes)"
echo "working tree that travels, without .whl: $((tree / 1024 / 1024)) MiB; with it: $(((tree + wheels) / 1024 / 1024)) MiB (limit 64 MiB)"
