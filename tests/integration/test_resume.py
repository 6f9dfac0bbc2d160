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


def tiny_yaml(tmp_path, iterations, checkpoint_config, steps_per_iteration=STEPS_PER_ITERATION):
    """tmp_path/tiny.yaml: experiment `tiny`, simple_spread, `iterations` of `steps_per_iteration`."""
    yaml_file = tmp_path / "tiny.yaml"
    yaml_file.write_text(textwrap.dedent(f"""\
        tiny:
          run: MADDPG
          env: mpe/simple_spread
          stop: {{training_iteration: {iterations}}}
          checkpoint_config: {checkpoint_config}
          config:
            min_sample_timesteps_per_iteration: {steps_per_iteration}
            num_steps_sampled_before_learning_starts: 500
            train_batch_size: 64
        """))
    return yaml_file


def progress_lines(stdout):
    """[(iteration, env steps)] of the `iter N | env steps X |` progress lines."""
    return [
        (int(m.group(1)), int(m.group(2).replace(",", "")))
        for m in re.finditer(r"^iter\s+(\d+) \| env steps\s+([\d,]+) \|", stdout, re.M)
    ]


def test_resume_continues_a_killed_run_from_its_last_checkpoint(tmp_path, ray_tmp):
    import rllib_maddpg  # noqa: F401  (unpickles the checkpoint's config)

    yaml_file = tiny_yaml(tmp_path, ITERATIONS, "{checkpoint_frequency: 1}")
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


# ----------------------------------------------------------------------------- interrupt

INTERRUPT_ITERATIONS = 12


def interrupt_yaml(tmp_path, steps_per_iteration=STEPS_PER_ITERATION):
    """A run that checkpoints only when interrupted (no periodic checkpoint, none at the end)."""
    return tiny_yaml(tmp_path, INTERRUPT_ITERATIONS, "{checkpoint_frequency: 0, checkpoint_at_end: false}",
                     steps_per_iteration)


def start_and_signal(train, env, signals, after_iteration=3):
    """Starts `rllib train` in its own session; once it printed iteration `after_iteration`,
    sends each (signal, to_group) in turn, 0.5 s apart: to_group as a terminal's Ctrl-C
    reaches every process of the foreground group (Ray's own processes block SIGINT), else to
    the driver alone, as `kill PID` or a job manager does. Returns (exit code, stdout, stderr,
    the last iteration printed before the first signal, seconds from it to the exit)."""
    proc = subprocess.Popen(train, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines, deadline = [], time.time() + TIMEOUT
    try:
        for line in proc.stdout:  # the progress lines, as they come
            lines.append(line)
            iterations = progress_lines(line)
            if iterations and iterations[0][0] >= after_iteration or time.time() > deadline:
                break
        printed = progress_lines("".join(lines))
        sent = time.time()
        for sig, to_group in signals:
            os.killpg(proc.pid, sig) if to_group else proc.send_signal(sig)
            time.sleep(0.5)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, "".join(lines) + out, err, printed[-1] if printed else None, time.time() - sent


@pytest.mark.parametrize("sig, to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["sigint_ctrl_c", "sigterm_kill_pid"])
def test_first_signal_checkpoints_the_running_trial_and_resume_continues_from_it(sig, to_group, tmp_path,
                                                                                 ray_tmp):
    import rllib_maddpg  # noqa: F401  (unpickles the checkpoint's config)

    storage = tmp_path / "results"
    run_dir = str(storage / "tiny")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    train = rllib_cmd("train", "file", interrupt_yaml(tmp_path), "--storage-path", storage, "--ray-num-cpus", 1)

    code, out, err, (last_iteration, _), _ = start_and_signal(train, env, [(sig, to_group)])
    kill_processes_under(ray_tmp, wait_s=30)
    assert code == 130, show(out, err, code)
    name = signal.Signals(sig).name
    assert f"rllib: {name}: checkpointing every running trial at the end of its current iteration" in err, err
    assert "rllib: all checkpoints saved; stopping." in err, err
    assert "trial 0: INTERRUPTED" in out, out

    # The run checkpoints nowhere else: this one is the interrupt's, at the end of the
    # iteration in flight at the signal (or of the one just printed), and Tune recorded it.
    (trial_dir,) = glob.glob(os.path.join(run_dir, "MADDPG_*"))
    (checkpoint,) = glob.glob(os.path.join(trial_dir, "checkpoint_*"))
    assert recorded_checkpoint(run_dir) == checkpoint
    iteration, steps = checkpoint_counters(checkpoint)
    assert iteration in (last_iteration, last_iteration + 1), (iteration, last_iteration)
    assert iteration < INTERRUPT_ITERATIONS and steps == iteration * STEPS_PER_ITERATION
    digest = tree_digest(checkpoint)

    proc = subprocess.run(train + ["--resume"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, show(proc.stdout, proc.stderr, proc.returncode)
    assert f"restarts from {os.path.basename(checkpoint)}" in proc.stdout, proc.stdout
    lines = progress_lines(proc.stdout)
    assert lines[0] == (iteration + 1, steps + STEPS_PER_ITERATION), proc.stdout
    assert lines[-1] == (INTERRUPT_ITERATIONS, INTERRUPT_ITERATIONS * STEPS_PER_ITERATION), proc.stdout
    assert tree_digest(checkpoint) == digest  # the interrupt's checkpoint is left as it was


def test_a_second_signal_stops_at_once_without_the_checkpoint(tmp_path, ray_tmp):
    # Iterations of 20,000 env steps (5 s or more): the second signal, 0.5 s after the
    # first, lands before the iteration in flight ends, and the run must not wait for it.
    storage = tmp_path / "results"
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    train = rllib_cmd("train", "file", interrupt_yaml(tmp_path, steps_per_iteration=20_000),
                      "--storage-path", storage, "--ray-num-cpus", 1)
    code, out, err, _, _ = start_and_signal(train, env, [(signal.SIGINT, False), (signal.SIGINT, False)],
                                            after_iteration=1)
    kill_processes_under(ray_tmp, wait_s=30)
    assert code == 130, show(out, err, code)
    assert "rllib: SIGINT again: stopping now, without the checkpoints not yet saved" in err, err
    assert "all checkpoints saved" not in err
    assert not glob.glob(os.path.join(storage, "tiny", "MADDPG_*", "checkpoint_*"))
    assert "no checkpoint yet" in out, out
    assert [iteration for iteration, _ in progress_lines(out)] == [1], out  # the one in flight was not awaited
