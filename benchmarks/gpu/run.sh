#!/usr/bin/env bash
# The one command for the GPU device machine (issue 23, item 5): update rounds/s of the
# learner on the GPU and on the machine's CPUs, and RLlib training env steps/s with
# 1/2/4/8/15 remote env runners. Writes JSON into OUT_DIR; total under --budget seconds
# (default 470, under 8 minutes); each part runs under `timeout` (its cap, or what is left
# of the budget) and the next goes on if one fails; parts the budget cannot fit are skipped.
#
#     bash benchmarks/gpu/run.sh OUT_DIR [--budget S] [--parts P,..] [--cpu] [--quick] [--no-install] [--no-ray-stop]
#
#   --parts       which parts, comma-separated (default all, in this order):
#                 floor_b1024 (N = 3, 6, 12; minibatch 1024; GPU, CPU 1 thread, CPU all threads),
#                 gpu_learner (MADDPG training with num_gpus=1: the learner and the replay mirror on
#                 the GPU, env sampling in the driver on CPU; N = 3, 12; per-agent vs batched),
#                 batched_env (throughput.py --compare-paths 3 12 --batched-backend vmas: per-agent,
#                 batched learner, and VMAS's simple_spread at 512 copies per call, learner on the GPU),
#                 throughput (1, 4, 15, 8, 2 runners), floor_b8192 (minibatch 8192; GPU, CPU
#                 all threads), compile (torch.compile of the shared mode, N = 12, GPU)
#   --cpu         time on the CPU only (also chosen when torch sees no GPU)
#   --quick       a tiny configuration (a smoke test of this script, not figures)
#   --no-install  use the Python path as it is (no wheels from .whl/)
#   --no-ray-stop never run `ray stop --force` (it ends EVERY Ray process of the user, so
#                 use this on a shared machine; the device machine is ours alone)
#   PYTHON=...    the interpreter (default python3); SITE=... where the wheels go (default /tmp/site)
#
# Needs the wheels of benchmarks/gpu/make_bundle.sh in <repo>/.whl (the device image has
# no ray, gymnasium, pettingzoo, mpe2); installs them to /tmp/site.
#
# OUT_DIR gets (at most 10 files):
#   environment.json             Python, torch/CUDA, GPU (torch and nvidia-smi), CPUs, package versions
#   update_rounds.jsonl          benchmarks/batched_update_floor.py: one line per (N, batch, device, threads)
#   update_rounds_compile.jsonl  the same for torch.compile (with compile_s) next to eager and graph
#   learner_on_device.jsonl      benchmarks/throughput.py --compare-batched --num-gpus 1 (0 with --cpu)
#   batched_env.jsonl            benchmarks/throughput.py --compare-paths 3 12 --batched-backend vmas --num-gpus 1
#   throughput.jsonl             benchmarks/throughput.py --env simple_spread: one line per runner count
#   parts.jsonl                  each part: rc (124: stopped at its limit), seconds, limit
#   log.txt                      everything the parts printed (stdout and stderr)
# and prints a short table (benchmarks/gpu/summarize.py) last.
set -u

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: bash benchmarks/gpu/run.sh OUT_DIR [--budget S] [--parts P,..] [--cpu] [--quick] [--no-install] [--no-ray-stop]" >&2
  exit 2
fi
OUT=$1; shift
BUDGET=470; PARTS=floor_b1024,gpu_learner,batched_env,throughput,floor_b8192,compile; CPU_ONLY=0; QUICK=0; INSTALL=1; RAY_STOP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET=$2; shift 2 ;;
    --parts) PARTS=$2; shift 2 ;;
    --cpu) CPU_ONLY=1; shift ;;
    --quick) QUICK=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --no-ray-stop) RAY_STOP=0; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/log.txt"
T0=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore RAY_USAGE_STATS_ENABLED=0
cd "$ROOT"

say() { echo "[run.sh $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }

# part NAME CAP JSONL CMD...: runs CMD under `timeout` (CAP, or what is left of the budget),
# its output into log.txt, its JSON lines (lines starting with '{') into JSONL.
part() {
  local name=$1 cap=$2 jsonl=$3; shift 3
  local left=$(( BUDGET - ($(date +%s) - T0) - 10 ))
  local limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt 20 ]; then
    say "skip $name: ${left}s left of the budget"
    echo "{\"part\": \"$name\", \"skipped\": true, \"timeout_s\": $limit}" >> "$OUT/parts.jsonl"
    return
  fi
  say "start $name (limit ${limit}s): $*"
  local start=$(date +%s)
  # Into a file, not a pipe: a process the part leaves behind (a Ray worker) that still holds
  # its stdout cannot keep this script waiting.
  local tmp=/tmp/run_sh_part.out
  timeout -k 10 "$limit" "$@" > "$tmp" 2> "$tmp.err"
  local rc=$?
  LAST_RC=$rc
  { echo "--- $name: stderr"; cat "$tmp.err"; echo "--- $name: stdout"; cat "$tmp"; } >> "$LOG"
  grep '^{' "$tmp" >> "$OUT/$jsonl"
  local took=$(( $(date +%s) - start ))
  say "end $name: rc $rc after ${took}s"
  if [ "$rc" != 0 ]; then  # the reply shows only the output's tail: say why here
    grep -v '^\s*$' "$tmp.err" | grep -iE 'error|exception|killed|assert' | tail -n 3 | cut -c1-300 | sed 's/^/    /'
  fi
  rm -f "$tmp" "$tmp.err"
  echo "{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $took, \"timeout_s\": $limit}" >> "$OUT/parts.jsonl"
}

# Ray processes that a throughput run stopped at its limit left behind (a run that ends
# calls ray.shutdown() itself); the ray CLI, from the wheel's package.
LAST_RC=0
ray_stop() {
  if [ "$RAY_STOP" = 1 ] && [ "$LAST_RC" != 0 ]; then
    say "ray stop --force (the last part ended with rc $LAST_RC)"
    $PY -m ray.scripts.scripts stop --force >> "$LOG" 2>&1 || true
  fi
}

# 1. The wheels the image lacks (ray without its jars, gymnasium, pettingzoo, mpe2, ...).
INSTALL_S=0
if [ "$INSTALL" = 1 ]; then
  start=$(date +%s)
  if ls "$ROOT"/.whl/*.whl > /dev/null 2>&1; then
    say "installing $(ls "$ROOT"/.whl/*.whl | wc -l) wheels to $SITE"
    timeout 180 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$ROOT"/.whl/*.whl >> "$LOG" 2>&1 || say "pip install failed (rc $?): see log.txt"
  else
    say "no wheels in $ROOT/.whl: run benchmarks/gpu/make_bundle.sh where a package index is reachable"
  fi
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  INSTALL_S=$(( $(date +%s) - start ))
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}   # rllib_maddpg, for Ray's workers too
# Not a part: its output is one JSON object, and it also prints what went wrong with imports.
timeout 60 $PY benchmarks/gpu/environment.py "{\"install_s\": $INSTALL_S, \"budget_s\": $BUDGET, \"quick\": $QUICK}" \
  > "$OUT/environment.json" 2>> "$LOG"
if IMPORTS=$(timeout 90 $PY -c "import ray, ray.rllib, rllib_maddpg, mpe2; print('ray', ray.__version__)" 2>&1); then
  say "imports ok ($(echo "$IMPORTS" | tail -n 1))"
else
  echo "$IMPORTS" >> "$LOG"
  say "import of ray.rllib/rllib_maddpg/mpe2 failed: $(echo "$IMPORTS" | tail -n 1 | cut -c1-300)"
fi

# CPUs this process may use (not `nproc`: it honours OMP_NUM_THREADS)
NCPU=$($PY -c "import os; print(len(os.sched_getaffinity(0)))" 2>/dev/null || nproc --all)
if [ "$CPU_ONLY" = 0 ] && $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>> "$LOG"; then
  DEVICES="cuda cpu"; GRAPH=shared_graph; CUDA=1
else
  DEVICES="cpu"; GRAPH=; CUDA=0
  say "no CUDA device (or --cpu): timing on the CPU only"
fi
THREADS="1 $NCPU"; [ "$NCPU" = 1 ] && THREADS=1
FLOOR=(benchmarks/batched_update_floor.py --device $DEVICES)
wanted() { case ",$PARTS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# 2. (a) update rounds/s of the per-agent loop and the batched modes, GPU vs CPU (the equality
#    checks run on the CPU); (b) RLlib training env steps/s by runner count; then larger
#    minibatches and torch.compile: in the order of what matters most if time runs out.
if [ "$QUICK" = 1 ]; then  # a smoke test of this script: tiny sizes, not figures
  AGENTS="3"; B_SMALL=256; B_LARGE=2048; TIMING=(--reps 2 --seconds 0.05); CHECK=1; COMPILE_AGENTS=3
  RUNNERS="1"; TP=(--steps 2000 --raw-steps 500 --warmup 2000); CAP_FLOOR=120; CAP_TP=240; CAP_LARGE=60; CAP_COMPILE=120
  GPU_LEARNER_AGENTS="3"; GL=(--window 500 --windows 1 --warmup 1100); CAP_GPU_LEARNER=120
  BATCHED_ENV_AGENTS="3"; BE=(--window 1000 --windows 1 --warmup 1100 --batched-envs 32 --batched-fragment 25 --ceiling-seconds 0.5); CAP_BATCHED_ENV=150
else
  AGENTS="3 6 12"; B_SMALL=1024; B_LARGE=8192; TIMING=(--reps 5 --seconds 0.25); CHECK=2; COMPILE_AGENTS=12
  RUNNERS="1 4 15 8 2"; TP=(--steps 10000 --raw-steps 5000 --warmup 5000); CAP_FLOOR=130; CAP_TP=60; CAP_LARGE=90; CAP_COMPILE=120
  GPU_LEARNER_AGENTS="3 12"; GL=(--window 2000 --windows 1 --warmup 2000); CAP_GPU_LEARNER=100
  BATCHED_ENV_AGENTS="3 12"; BE=(--window 6400 --windows 1 --warmup 3000 --batched-envs 512 --batched-fragment 25 --ceiling-seconds 1); CAP_BATCHED_ENV=120
fi
if wanted floor_b1024; then
  part floor_b1024 $CAP_FLOOR update_rounds.jsonl $PY "${FLOOR[@]}" --agents $AGENTS --batch-size $B_SMALL \
    --threads $THREADS "${TIMING[@]}" --check-rounds $CHECK --paths loop shared full vmap $GRAPH
fi
if wanted gpu_learner; then  # MADDPG training with its learner on the GPU (num_gpus=1), per-agent vs batched
  part gpu_learner $CAP_GPU_LEARNER learner_on_device.jsonl $PY benchmarks/throughput.py --env simple_spread \
    --compare-batched $GPU_LEARNER_AGENTS --num-gpus $CUDA "${GL[@]}"
  ray_stop
fi
if wanted batched_env; then  # the three paths, the batched env being VMAS's simple_spread, learner on the GPU
  part batched_env $CAP_BATCHED_ENV batched_env.jsonl $PY benchmarks/throughput.py --env simple_spread \
    --compare-paths $BATCHED_ENV_AGENTS --batched-backend vmas --num-gpus $CUDA "${BE[@]}"
  ray_stop
fi
if wanted throughput; then
  for R in $RUNNERS; do
    part "throughput_r$R" $CAP_TP throughput.jsonl $PY benchmarks/throughput.py --env simple_spread \
      --runners "$R" "${TP[@]}"
    ray_stop
  done
fi
if wanted floor_b8192; then
  part floor_b8192 $CAP_LARGE update_rounds.jsonl $PY "${FLOOR[@]}" --agents $AGENTS --batch-size $B_LARGE \
    --threads "$NCPU" "${TIMING[@]}" --check-rounds 0 --paths loop shared full vmap $GRAPH
fi
if wanted compile; then
  if [ "$CUDA" = 1 ]; then
    part compile $CAP_COMPILE update_rounds_compile.jsonl $PY benchmarks/batched_update_floor.py --device cuda \
      --agents $COMPILE_AGENTS --batch-size $B_SMALL --threads 1 "${TIMING[@]}" --check-rounds 0 \
      --paths shared shared_compile $GRAPH
  else
    say "skip compile: it is timed on CUDA only"
  fi
fi
say "done in $(( $(date +%s) - T0 ))s"
$PY benchmarks/gpu/summarize.py "$OUT"
