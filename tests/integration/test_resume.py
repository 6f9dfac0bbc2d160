"""`rllib train file X.yaml --resume`: a run killed with SIGKILL continues in its own directory.

The first run is killed (the driver process, as a crash or an OOM kill would)
once Tune has recorded a checkpoint; `--resume` must restart the trial from
that checkpoint with its counters, write new checkpoints after it, leave every
existing checkpoint as it was, and make no new run directory.
"""

import glob
import hashlib
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from local_cluster import kill_processes_under

pytestmark = pytest.mark.integration

STEPS_PER_ITERATION = 500
ITERATIONS = 30
TIMEOUT = 240


@pytest.fixture
def ray_tmp():
    """A short Ray temp dir of our own (Ray's socket paths must stay < 108 chars)."""
    path = tempfile.mkdtemp(prefix="rmr", dir="/tmp")
    yield path
    kill_processes_under(path, wait_s=30)
    shutil.rmtree(path, ignore_errors=True)


def rllib_cmd(*args):
    return [sys.executable, "-m", "rllib_maddpg.cli", *map(str, args)]


def show(out, err="", code=None):
    return f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"


def tree_digest(path):
    """{relative file path: sha256} of every file below path."""
    digest = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                digest[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return digest


def checkpoint_counters(checkpoint):
    with open(os.path.join(checkpoint, "algorithm_state.pkl"), "rb") as f:
        state = pickle.load(f)
    return state["training_iteration"], state["counters"]["num_env_steps_sampled"]


def recorded_checkpoint(run_dir):
    """The trial's latest checkpoint as Tune's saved experiment state records it."""
    from rllib_maddpg.cli.errors import UsageError
    from rllib_maddpg.cli.run import recorded_results

    try:
        _, (result,) = recorded_results(run_dir, "MADDPG")
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, UsageError):  # not written yet, or being written
        return None
    return result.checkpoint.path if result.checkpoint else None


def progress_lines(stdout):
    """[(iteration, env steps)] of the `iter N | env steps X |` progress lines."""
    return [
        (int(m.group(1)), int(m.group(2).replace(",", "")))
        for m in re.finditer(r"^iter\s+(\d+) \| env steps\s+([\d,]+) \|", stdout, re.M)
    ]


def test_resume_continues_a_killed_run_from_its_last_checkpoint(tmp_path, ray_tmp):
    import rllib_maddpg  # noqa: F401  (unpickles the checkpoint's config)

    yaml_file = tmp_path / "tiny.yaml"
    yaml_file.write_text(textwrap.dedent(f"""\
        tiny:
          run: MADDPG
          env: mpe/simple_spread
          stop: {{training_iteration: {ITERATIONS}}}
          checkpoint_config: {{checkpoint_frequency: 1}}
          config:
            min_sample_timesteps_per_iteration: {STEPS_PER_ITERATION}
            num_steps_sampled_before_learning_starts: 500
            train_batch_size: 64
        """))
    storage = tmp_path / "results"
    run_dir = str(storage / "tiny")
    # Tune records its experiment state (what --resume reads) at most every 10 s
    # by default; a fast machine finishes this tiny run before the first record.
    # Record every second so the kill lands mid-run on any machine.
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    train = rllib_cmd("train", "file", yaml_file, "--storage-path", storage, "--ray-num-cpus", 1)

    # 1. Train; SIGKILL the driver once Tune has recorded a checkpoint after the first.
    first = subprocess.Popen(train, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + TIMEOUT
    recorded = None
    try:
        while time.time() < deadline and first.poll() is None:
            recorded = recorded_checkpoint(run_dir) if os.path.isdir(run_dir) else None
            if recorded and int(recorded[-6:]) >= 1:
                break
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, show(out, err, first.returncode)
    assert recorded, show(out, err)
    # The node processes of a driver's `ray.init()` exit by themselves when the
    # driver dies; this waits for that, then kills leftovers (by PID, only ours).
    kill_processes_under(ray_tmp, wait_s=30)

    (trial_dir,) = glob.glob(os.path.join(run_dir, "MADDPG_*"))
    recorded_index = int(recorded[-6:])
    on_disk = sorted(glob.glob(os.path.join(trial_dir, "checkpoint_*")))
    # A checkpoint the driver had not recorded when it died (as a kill between
    # writing and recording leaves): it must be moved aside, not overwritten.
    fake = os.path.join(trial_dir, f"checkpoint_{int(on_disk[-1][-6:]) + 1:06d}")
    os.makedirs(fake)
    with open(os.path.join(fake, "MARKER"), "w") as f:
        f.write("unrecorded")
    before = {path: tree_digest(path) for path in on_disk + [fake]}
    iteration, steps = checkpoint_counters(recorded)
    assert steps == iteration * STEPS_PER_ITERATION

    # 2. While another process holds the run (here: this test, as a running
    #    first run or resume would), a --resume is refused and touches nothing.
    from rllib_maddpg.cli.run import lock_run_dir

    holder = lock_run_dir(run_dir)
    try:
        refused = subprocess.run(train + ["--resume"], env=env, capture_output=True, text=True,
                                 timeout=TIMEOUT)
    finally:
        holder.close()
    assert refused.returncode == 2, show(refused.stdout, refused.stderr, refused.returncode)
    assert f"is being written by another `rllib train` (pid {os.getpid()})" in refused.stderr
    assert {path: tree_digest(path) for path in on_disk + [fake]} == before

    # 3. Resume.
    proc = subprocess.run(train + ["--resume"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, show(proc.stdout, proc.stderr, proc.returncode)
    assert f"resuming {run_dir}" in proc.stdout
    assert f"restarts from {os.path.basename(recorded)}" in proc.stdout, proc.stdout

    # The counters continue from the recorded checkpoint, to the stop criterion.
    lines = progress_lines(proc.stdout)
    assert lines[0] == (iteration + 1, steps + STEPS_PER_ITERATION), proc.stdout
    assert lines[-1] == (ITERATIONS, ITERATIONS * STEPS_PER_ITERATION), proc.stdout

    # Nothing overwritten: recorded checkpoints unchanged in place, later ones moved aside intact.
    for path, digest in before.items():
        index = int(path[-6:])
        kept = path if index <= recorded_index else os.path.join(
            trial_dir, f"unrecorded_{os.path.basename(path)}")
        assert tree_digest(kept) == digest, kept
        if index > recorded_index:
            assert f"{os.path.basename(path)} was written after Tune's last record" in proc.stdout
    # New checkpoints come after the recorded one; the last holds the final counters.
    after = sorted(glob.glob(os.path.join(trial_dir, "checkpoint_*")))
    new = [p for p in after if int(p[-6:]) > recorded_index]
    assert new and all(tree_digest(p) for p in new)
    assert checkpoint_counters(new[-1]) == (ITERATIONS, ITERATIONS * STEPS_PER_ITERATION)
    # The same run directory, the same trial directory.
    assert os.listdir(storage) == ["tiny"]
    assert glob.glob(os.path.join(run_dir, "MADDPG_*")) == [trial_dir]

    # 4. Resuming a finished run does nothing.
    again = subprocess.run(train + ["--resume"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert again.returncode == 0, show(again.stdout, again.stderr, again.returncode)
    assert "nothing to resume: all 1 trials finished" in again.stdout
    assert sorted(glob.glob(os.path.join(trial_dir, "checkpoint_*"))) == after


BAD_RESUMES = {
    "nothing_to_resume": ([], ["nothing to resume", "start it without --resume"]),
    "with_stop": (["--stop", '{"training_iteration": 3}'], ["drop --stop"]),
    "not_a_run_dir": (["{tmp}"], ["is not a Tune experiment directory"]),
}


@pytest.mark.parametrize("case", sorted(BAD_RESUMES))
def test_bad_resume_is_one_clear_message_and_exit_2(case, tmp_path):
    flags, expected = BAD_RESUMES[case]
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text("exp:\n  run: MADDPG\n  env: mpe/simple\n")
    resume = ["--resume", *[f.format(tmp=tmp_path) for f in flags]] if case == "not_a_run_dir" else [
        *flags, "--resume"]
    proc = subprocess.run(
        rllib_cmd("train", "file", yaml_file, "--storage-path", tmp_path / "results", *resume),
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert proc.returncode == 2, show(proc.stdout, proc.stderr, proc.returncode)
    lines = [l for l in proc.stderr.splitlines() if l.strip() and "WARNING" not in l]
    assert len(lines) == 1 and lines[0].startswith("rllib: error: "), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert not (tmp_path / "results").exists()
