"""Issue 13: training survives the loss of the worker node and uses the replacement's env runner.

Runs the short version of `benchmarks/fault_injection.py`: a real two-node
cluster on this machine (the worker node holds the one env runner), the
worker node's raylet SIGKILLed once at 2,000 env steps, a replacement node
started at once. Training must reach its 6,000-step budget (sampling on the
driver while the runner is down, after a 2 s wait instead of the default
60 s) and end with the runner restarted on the replacement node and
sampling there. ~90 s on a busy 2-core machine; generous, bounded timeouts.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUDGET = 6000


def test_a_lost_worker_node_does_not_end_training():
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "fault_injection.py"),
         "--env-steps", str(BUDGET), "--runner-kills", "0", "--node-kill-at", "0.3",
         "--replacement-delay-s", "0", "--wait-timeout-s", "2", "--learning-starts", "1000",
         "--eval-episodes", "2", "--recovery-timeout-s", "240", "--no-baseline"],
        capture_output=True, text=True, timeout=420,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))},
    )
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-5000:]}"
    run = json.loads(proc.stdout.strip().splitlines()[-1])["faults"]
    assert run["node_kills"] == 1 and run["restarts"] >= 1, run
    assert run["env_steps"] >= BUDGET, run
    # Degraded, not stopped: the driver sampled while the runner was down ...
    assert run["env_steps_sampled_on_driver"] > 0 and run["degraded_time_s"] > 0, run
    # ... and the runner came back on the replacement node and sampled there.
    assert run["runner_on_replacement_node"], (run, proc.stdout[-3000:])
    assert run["runner_back_at_env_steps"] is not None and run["env_steps_by_restarted_runner"] > 0, run
