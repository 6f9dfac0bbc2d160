"""What `rllib train` prints: a line per trial iteration (a ray.tune.Callback), then a
summary and the exit code from the ResultGrid that `Tuner.fit()` returns."""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any

from ray import tune
from ray.tune.utils import flatten_dict

from rllib_maddpg.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TRIAL_ERROR, did_you_mean

TERMINATED, ERROR, INTERRUPTED = "TERMINATED", "ERROR", "INTERRUPTED"


class ProgressCallback(tune.Callback):
    """Prints each trial's iterations, checkpoints and end. Tune saves it in the run's
    tuner.pkl, so a `--resume` gets it back with the stop criteria the run started with."""

    def __init__(self, stop: dict[str, Any], several_trials: bool):
        self.stop, self.several_trials, self._stop_keys_checked = stop, several_trials, False

    def _print(self, trial, text: str, err: bool = False) -> None:
        prefix = f"[{trial_label(trial.experiment_tag, trial.trial_id)}] " if self.several_trials else ""
        print(prefix + text, file=sys.stderr if err else sys.stdout, flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        steps, seconds = result.get("num_env_steps_sampled_this_iter"), result.get("time_this_iter_s")
        rate = f"{steps / seconds:.0f}" if steps and seconds else "-"
        total = result.get("num_env_steps_sampled_lifetime")
        total = "-" if total is None else f"{total:,}"
        self._print(trial, f"iter {result.get('training_iteration', 0):>4} | env steps {total:>10} | "
                           f"{rate:>7} steps/s | {format_returns(result)} | "
                           f"{format_duration(result.get('time_total_s'))}")
        if not self._stop_keys_checked:  # a misspelt stop key would never stop the trial
            self._stop_keys_checked = True
            flat = flatten_dict(result, delimiter="/")
            for key in [key for key in self.stop if key not in flat]:
                self._print(trial, f"rllib: warning: stop criterion {key!r} is not in the results, "
                                   f"so it never stops a trial.{did_you_mean(key, flat)}", err=True)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self._print(trial, f"checkpoint saved: {checkpoint.path}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        flat = flatten_dict(trial.last_result, delimiter="/")
        reached = [f"{key} >= {value:g}" for key, value in self.stop.items()
                   if isinstance(flat.get(key), (int, float)) and flat[key] >= value]
        self._print(trial, f"done: stop criterion reached ({', '.join(reached)})" if reached
                    else "done: finished (the trainable reported done)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(trial, f"trial failed: {last_line(trial.error_file) or 'see the error file'}\n"
                           f"  error file: {trial.error_file}", err=True)


def trial_status(result) -> str:
    """TERMINATED, ERROR or INTERRUPTED (not finished: Ctrl-C, or the run was killed)."""
    if result.error is not None:
        return ERROR
    return TERMINATED if result.metrics.get("done") else INTERRUPTED


def trial_label(experiment_tag: str | None, trial_id: str | None) -> str:
    """`trial 0`, or the trial's grid values (`0_tau=0.0100`)."""
    tag = experiment_tag or trial_id or "?"
    return (tag if "=" in tag else f"trial {tag}")[:40]


def result_label(result) -> str:
    """trial_label of a ResultGrid entry; its directory name if it never reported."""
    metrics = result.metrics
    return trial_label(metrics.get("experiment_tag"), metrics.get("trial_id")) if metrics \
        else os.path.basename(result.path)


def report(name: str, run_dir: str, seconds: float, results) -> int:
    """Prints a line per trial of Tune's ResultGrid (with those a resumed run had finished
    before); returns the exit code: 1 if a trial errored, 130 if one is unfinished (Ctrl-C)."""
    print(f"== {name}: summary ({format_duration(seconds)}; results in {run_dir})")
    if not len(results):
        print("   no trial reported a result")
    statuses = [trial_status(result) for result in results]
    for result, status in zip(results, statuses):
        metrics, error_file = result.metrics, os.path.join(result.path, "error.txt")
        iterations = metrics.get("training_iteration", 0)
        shown = f"ERROR: {last_line(error_file)}" if status == ERROR else status
        print(f"   {result_label(result)}: {shown}, {iterations} iteration{'s' * (iterations != 1)}, "
              f"{metrics.get('num_env_steps_sampled_lifetime') or 0:,} env steps, {format_returns(metrics)}")
        if result.checkpoint:
            print(f"      last checkpoint: {result.checkpoint.path}")
        elif status == INTERRUPTED and not iterations:
            print("      not started yet: --resume starts it")
        elif status == INTERRUPTED:
            print("      no checkpoint yet (--checkpoint-freq N saves one every N iterations)")
        if status == ERROR:
            print(f"      error file: {error_file}")
    sys.stdout.flush()
    if ERROR in statuses:
        return EXIT_TRIAL_ERROR
    return EXIT_INTERRUPTED if INTERRUPTED in statuses or not statuses else EXIT_OK


def last_line(path: str | None) -> str:
    """The last non-blank line of a text file (an error file's exception), or ""."""
    if not path or not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return next((line.strip() for line in reversed(f.readlines()) if line.strip()), "")


def format_duration(seconds: float | None) -> str:
    return str(datetime.timedelta(seconds=round(seconds or 0)))  # H:MM:SS


def format_returns(result: dict[str, Any]) -> str:
    """`return agent_0=-3.10 agent_1=... (episode -9.30)`: the mean episode return per policy
    (a shared policy's: per agent), then the episode's summed over agents, as a team stop reads it."""
    runners = result.get("env_runners") or {}
    returns = runners.get("policy_reward_mean") or {}
    if not returns:
        return "return -"
    text = "return " + " ".join(f"{pid}={value:.2f}" for pid, value in sorted(returns.items()))
    episode = runners.get("episode_return_mean")
    if isinstance(episode, (int, float)) and (len(returns) > 1 or abs(episode - sum(returns.values())) > 1e-6):
        text += f" (episode {episode:.2f})"
    return text
