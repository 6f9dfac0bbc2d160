"""The tuned examples: each file is valid, and (slow) each reaches its own threshold.

`pytest -m slow tests/learning/test_tuned_examples.py` runs every tuned
example through `rllib train file` as a user would and checks that its
reward threshold was reached before its env-step budget (minutes each on 2
CPU cores; the figures are in README "Results").
"""

import argparse
import glob
import json
import os
import subprocess
import sys

import pytest

from rllib_maddpg import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUNED = sorted(p for p in glob.glob(os.path.join(REPO, "tuned_examples", "*.yaml"))
               if not os.path.basename(p).startswith("sweep_"))
NAMES = [os.path.basename(p)[:-5] for p in TUNED]
# The paper's metrics (table 2) at the stop, for the shared cooperative-navigation examples: upper
# bounds per episode, where the scripted "each agent to its nearest landmark" gives 0.376 and 7.8
# collisions at N = 3, 0.284 and 21.8 at N = 6 (`benchmarks/sharing.py --scripted`; README "Results").
TASK_METRIC_BOUNDS = {
    "simple_spread_shared": {"mean_landmark_distance": 0.5, "collisions": 3.0},
    "simple_spread_n6_shared": {"mean_landmark_distance": 0.35, "collisions": 8.0},
}


def skip_without_its_extra(raw) -> None:
    """Examples on the JaxMARL backend need the jaxmarl extra (skipped where it is missing)."""
    if (raw.get("config", {}).get("env_config") or {}).get("backend") == "jaxmarl":
        pytest.importorskip("jaxmarl", reason="the jaxmarl extra is not installed")


@pytest.mark.unit
@pytest.mark.parametrize("path", TUNED, ids=NAMES)
def test_tuned_example_is_valid_and_stops_at_a_threshold_and_a_budget(path, tmp_path):
    (name, raw), = cli.load_experiment_file(path).items()
    skip_without_its_extra(raw)
    args = argparse.Namespace(storage_path=str(tmp_path), checkpoint_freq=None, checkpoint_at_end=None)
    spec = cli.prepare_experiment(name, raw, {}, {}, args)  # builds and validates the config
    metrics = [k for k in spec.stop if k.startswith("env_runners/")]
    assert len(metrics) == 1 and "num_env_steps_sampled_lifetime" in spec.stop, spec.stop
    assert spec.config["seed"] == 0


@pytest.mark.learning
@pytest.mark.slow
@pytest.mark.parametrize("path", TUNED, ids=NAMES)
def test_tuned_example_reaches_its_threshold(path, tmp_path):
    (name, raw), = cli.load_experiment_file(path).items()
    skip_without_its_extra(raw)
    (metric, threshold), = [(k, v) for k, v in cli.flatten_stop(raw["stop"], "").items()
                            if k.startswith("env_runners/")]
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_maddpg.cli", "train", "file", path,
         "--storage-path", str(tmp_path), "--ray-num-cpus", "2"],
        capture_output=True, text=True, timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"done: stop criterion reached ({metric} >= {threshold:g})" in proc.stdout, proc.stdout[-3000:]
    bounds = TASK_METRIC_BOUNDS.get(os.path.basename(path)[:-5], {})
    if bounds:
        (result_file,) = glob.glob(os.path.join(str(tmp_path), name, "*", "result.json"))
        with open(result_file) as f:
            last = json.loads(f.readlines()[-1])
        for key, bound in bounds.items():
            assert last["env_runners"]["custom_metrics"][f"{key}_mean"] <= bound, (key, bound)
