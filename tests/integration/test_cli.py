"""End-to-end tests of the `rllib` command (rllib_maddpg/cli/), run as subprocesses.

One tiny training run (module fixture) feeds the evaluate/render tests; the
input-error tests never start Ray.
"""

import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.integration

TIMEOUT = 240  # seconds; each run here takes ~5-30 s on 2 cores


def rllib(*args, cwd=None):
    """Runs `python -m rllib_maddpg.cli ARGS`; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "rllib_maddpg.cli", *map(str, args)],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
    )


def write_yaml(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def show(proc):
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`rllib train file tiny.yaml`: 2 iterations of MADDPG on simple_spread."""
    root = tmp_path_factory.mktemp("cli_train")
    yaml_file = write_yaml(root / "tiny.yaml", """\
        tiny:
          run: MADDPG
          env: mpe/simple_spread
          stop: {training_iteration: 2}
          checkpoint_config: {checkpoint_at_end: true}
          config:
            min_sample_timesteps_per_iteration: 500
            num_steps_sampled_before_learning_starts: 500
            train_batch_size: 64
        """)
    storage = root / "results"
    proc = rllib("train", "file", yaml_file, "--storage-path", storage, "--ray-num-cpus", 2)
    trial_dirs = glob.glob(str(storage / "tiny" / "MADDPG_*"))
    return {"proc": proc, "storage": storage, "yaml": yaml_file, "trial_dirs": trial_dirs}


def test_train_prints_progress_and_writes_checkpoint_and_tensorboard(trained):
    proc = trained["proc"]
    assert proc.returncode == 0, show(proc)
    out = proc.stdout
    # One progress line per iteration: iteration, env steps, steps/s, returns per policy.
    for iteration, steps in ((1, "500"), (2, "1,000")):
        line = next((l for l in out.splitlines() if l.startswith(f"iter    {iteration} ")), None)
        assert line is not None, show(proc)
        assert f"env steps {steps:>10}" in line and "steps/s" in line, line
        assert "agent_0=" in line and "agent_2=" in line, line
    assert "checkpoint saved:" in out
    assert "done: stop criterion reached (training_iteration >= 2)" in out
    assert "summary" in out and "TERMINATED" in out
    assert "Traceback" not in proc.stderr, show(proc)

    assert len(trained["trial_dirs"]) == 1, show(proc)
    trial_dir = trained["trial_dirs"][0]
    assert glob.glob(os.path.join(trial_dir, "events.out.tfevents*")), os.listdir(trial_dir)
    checkpoints = glob.glob(os.path.join(trial_dir, "checkpoint_*"))
    assert len(checkpoints) == 1, os.listdir(trial_dir)
    assert sorted(os.listdir(os.path.join(checkpoints[0], "policies"))) == [
        "agent_0", "agent_1", "agent_2",
    ]
    assert f"last checkpoint: {checkpoints[0]}" in out


def _checkpoint(trained):
    if trained["proc"].returncode != 0:
        pytest.skip("training failed (see the train test)")
    return glob.glob(os.path.join(trained["trial_dirs"][0], "checkpoint_*"))[0]


def test_evaluate_prints_mean_return_per_agent(trained):
    proc = rllib("evaluate", _checkpoint(trained), "--episodes", 2, "--seed", 0)
    assert proc.returncode == 0, show(proc)
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    for agent in ("agent_0", "agent_1", "agent_2"):
        assert agent in rows, show(proc)
        # agent, policy, mean, std, min, max
        mean, std = float(rows[agent][2]), float(rows[agent][3])
        assert mean < 0 and std >= 0  # simple_spread rewards are negative distances
    assert "team (sum)" in proc.stdout
    assert "2 episodes, explore=False" in proc.stdout


def test_evaluate_render_writes_a_valid_gif(trained, tmp_path):
    gif_path = tmp_path / "spread.gif"
    proc = rllib("evaluate", _checkpoint(trained), "--episodes", 1, "--render", gif_path)
    assert proc.returncode == 0, show(proc)
    from PIL import Image

    assert gif_path.read_bytes()[:6] == b"GIF89a"
    assert gif_path.stat().st_size < 500_000  # compressed (the uncompressed writer's was 3.6 MB)
    with Image.open(gif_path) as gif:
        assert gif.size == (700, 700)  # MPE's full resolution
        first = np.asarray(gif.convert("RGB"))
        # reset + 25 steps (max_cycles) at 10 fps; Pillow merges identical
        # consecutive frames into one longer frame.
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert sum(durations) == 26 * 100, durations
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 2  # agents and landmarks on the background
    # Nothing is overwritten: a second render to the same file is refused.
    again = rllib("evaluate", _checkpoint(trained), "--episodes", 1, "--render", gif_path)
    assert again.returncode == 2 and "exists" in again.stderr, show(again)


def test_grid_search_runs_one_trial_per_value_and_keeps_old_results(trained):
    """Also: `train -f`, and a second run of the same experiment name gets a new directory."""
    storage = trained["storage"]
    yaml_file = write_yaml(trained["yaml"].parent / "grid.yaml", """\
        tiny:
          run: MADDPG
          env: mpe/simple
          stop: {training_iteration: 1}
          checkpoint_config: {checkpoint_at_end: false}
          config:
            min_sample_timesteps_per_iteration: 200
            num_steps_sampled_before_learning_starts: 100
            train_batch_size: 32
            tau: {grid_search: [0.01, 0.05]}
        """)
    before = sorted(os.listdir(storage / "tiny"))
    proc = rllib("train", "-f", yaml_file, "--storage-path", storage, "--ray-num-cpus", 2)
    assert proc.returncode == 0, show(proc)
    assert "tau=0.0100] iter    1" in proc.stdout and "tau=0.0500] iter    1" in proc.stdout
    assert "exists; not touching it" in proc.stdout
    assert sorted(os.listdir(storage / "tiny")) == before
    new_dirs = [d for d in os.listdir(storage) if d.startswith("tiny_")]
    assert len(new_dirs) == 1, os.listdir(storage)
    assert len(glob.glob(str(storage / new_dirs[0] / "MADDPG_*"))) == 2


# ---------------------------------------------------------------- bad input


BAD_INPUTS = {
    "bad_yaml": (
        "exp:\n  run: MADDPG\n  env: mpe/simple\n  stop: {training_iteration: 1\n  config: {}\n",
        [],
        ["not valid YAML", "line 5"],
    ),
    "top_level_list": ("- run: MADDPG\n", [], ["must map experiment names"]),
    "unknown_config_key": (
        "exp:\n  run: MADDPG\n  env: mpe/simple\n  config: {actor_lrr: 0.1}\n",
        [],
        ["actor_lrr", "Did you mean 'actor_lr'"],
    ),
    "unknown_experiment_key": (
        "exp:\n  run: MADDPG\n  env: mpe/simple\n  stopp: {training_iteration: 1}\n",
        [],
        ["'stopp'", "Did you mean 'stop'", "checkpoint_config", "num_samples"],
    ),
    "unknown_run": ("exp:\n  run: MADDPGG\n  env: mpe/simple\n", [], ["'MADDPGG'", "MADDPG"]),
    "no_env": ("exp:\n  run: MADDPG\n", [], ["no env", "mpe/simple_spread"]),
    "bad_grid_value": (
        "exp:\n  run: MADDPG\n  env: mpe/simple\n  config: {tau: {grid_search: [0.1, 5]}}\n",
        [],
        ["tau=5"],
    ),
    "bad_stop_json": (
        "exp:\n  run: MADDPG\n  env: mpe/simple\n",
        ["--stop", "{training_iteration: 1}"],
        ["--stop is not valid JSON"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_message_and_exit_2(case, tmp_path):
    text, flags, expected = BAD_INPUTS[case]
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text(text)
    proc = rllib("train", "file", yaml_file, *flags, "--storage-path", tmp_path / "results")
    assert_usage_error(proc, expected)
    assert not (tmp_path / "results").exists()  # failed before Ray/Tune started


def test_missing_file_is_exit_2(tmp_path):
    proc = rllib("train", "file", tmp_path / "nope.yaml")
    assert_usage_error(proc, ["not found", "nope.yaml"])


def test_evaluate_bad_checkpoint_is_exit_2(tmp_path):
    assert_usage_error(rllib("evaluate", tmp_path / "nope"), ["checkpoint not found"])
    assert_usage_error(rllib("evaluate", tmp_path), ["not an RLlib checkpoint"])


def assert_usage_error(proc, expected):
    assert proc.returncode == 2, show(proc)
    assert "Traceback" not in proc.stderr + proc.stdout, show(proc)
    lines = [l for l in proc.stderr.splitlines() if l.strip() and "WARNING" not in l]
    assert len(lines) == 1 and lines[0].startswith("rllib: error: "), show(proc)
    for text in expected:
        assert text in lines[0], show(proc)


def test_train_logs_to_wandb_offline_and_to_an_mlflow_file_store(tmp_path, monkeypatch):
    """--wandb-project and --mlflow-tracking-uri add Tune's logger callbacks
    (W&B in offline mode: files only; MLflow: a file store)."""
    yaml_file = write_yaml(tmp_path / "tracked.yaml", """\
        tracked:
          run: MADDPG
          env: mpe/simple
          stop: {training_iteration: 2}
          checkpoint_config: {checkpoint_at_end: false}
          config: {min_sample_timesteps_per_iteration: 200, num_steps_sampled_before_learning_starts: 200,
                   train_batch_size: 32}
        """)
    mlruns = tmp_path / "mlruns"
    # MLflow 3 refuses its file store unless told (it prefers a database backend).
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
           "MLFLOW_ALLOW_FILE_STORE": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "rllib_maddpg.cli", "train", "file", str(yaml_file),
         "--storage-path", str(tmp_path / "results"), "--ray-num-cpus", "2",
         "--wandb-project", "rllib-maddpg-test", "--mlflow-tracking-uri", mlruns.as_uri()],
        capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, show(proc)
    (run_dir,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    assert glob.glob(os.path.join(run_dir, "*.wandb"))  # the run's logged history
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlruns.as_uri())
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "training_iteration")
    assert [m.value for m in history] == [1.0, 2.0]
    assert run.data.params["env"] == "mpe/simple"


@pytest.mark.parametrize("text, expected", [
    ("wandb: my-project", "`wandb` must be a mapping of WandbLoggerCallback arguments"),
    ("mlflow: {tracking_url: x}", "`mlflow` has unknown argument(s) ['tracking_url']"),
])
def test_bad_tracking_config_is_one_clear_message(tmp_path, text, expected):
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text(f"exp:\n  run: MADDPG\n  env: mpe/simple\n  {text}\n")
    proc = rllib("train", "file", yaml_file, "--storage-path", tmp_path / "results")
    assert_usage_error(proc, [expected])


def test_evaluate_prints_the_papers_task_metrics(trained):
    proc = rllib("evaluate", _checkpoint(trained), "--episodes", 3, "--metrics")
    assert proc.returncode == 0, show(proc)
    assert "task metrics" in proc.stdout, show(proc)
    lines = {l.split()[0]: l.split()[1] for l in proc.stdout.splitlines() if l.startswith("    ")}
    assert float(lines["mean_landmark_distance"]) > 0 and float(lines["collisions"]) >= 0


def test_train_file_with_a_shared_policy_then_evaluate(tmp_path):
    """A YAML whose policy_mapping_fn table maps the three predators to one policy:
    they train as one shared policy, and `rllib evaluate` plays them from the checkpoint."""
    yaml_file = write_yaml(tmp_path / "shared.yaml", """\
        shared:
          run: MADDPG
          env: mpe/simple_tag
          stop: {training_iteration: 1}
          checkpoint_config: {checkpoint_at_end: true}
          config:
            policy_mapping_fn: {adversary_0: predators, adversary_1: predators, adversary_2: predators}
            shared_policy_agent_id: true
            min_sample_timesteps_per_iteration: 500
            num_steps_sampled_before_learning_starts: 500
            train_batch_size: 64
        """)
    proc = rllib("train", "file", yaml_file, "--storage-path", tmp_path / "results", "--ray-num-cpus", 2)
    assert proc.returncode == 0, show(proc)
    assert "predators=" in proc.stdout and "agent_0=" in proc.stdout, show(proc)
    checkpoint = sorted(glob.glob(str(tmp_path / "results" / "shared" / "MADDPG_*" / "checkpoint_*")))[-1]
    proc = rllib("evaluate", checkpoint, "--episodes", 2)
    assert proc.returncode == 0, show(proc)
    assert sum(" predators " in line for line in proc.stdout.splitlines()) == 3, show(proc)
