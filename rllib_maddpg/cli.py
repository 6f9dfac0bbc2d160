"""The `rllib` command: train from an (old-format) RLlib YAML file, evaluate a checkpoint.

Ray 2.60 ships no `rllib` command; this one covers what the old
`rllib train file` / `rllib evaluate` did for MADDPG (and any other trainable
registered with Tune):

    rllib train file tuned_examples/simple_spread.yaml --ray-num-cpus 2
    rllib evaluate ~/ray_results/simple_spread/<trial>/checkpoint_000000 --episodes 10 --render spread.gif

Bad input (a missing file, broken YAML, an unknown key, a bad JSON flag, an
unregistered `run`, a bad config value) is found before Ray starts and
reported as one `rllib: error: ...` paragraph with exit code 2. Exit code 1
means a trial errored (its error file is named); 0 means all went well.
Ray Tune, RLlib's internals and numpy-heavy code are imported only when a
command needs them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import glob
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

EXIT_OK, EXIT_TRIAL_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# The keys of one experiment in the old RLlib YAML format.
EXPERIMENT_KEYS = {
    "run": "the trainable, e.g. MADDPG",
    "env": "the env (may also be given as config.env)",
    "stop": "stop criteria, e.g. {training_iteration: 100}",
    "config": "the algorithm config, e.g. {actor_lr: 0.01}",
    "checkpoint_config": "when to save checkpoints (keys below)",
    "storage_path": "where results go (default ~/ray_results)",
    "num_samples": "how many times to run each config (default 1)",
    "wandb": "send results to Weights & Biases: WandbLoggerCallback arguments, e.g. {project: p}",
    "mlflow": "send results to MLflow: MLflowLoggerCallback arguments, e.g. {tracking_uri: file:///x}",
}
# Experiment tracking through Tune's own logger callbacks (optional extra `tracking`).
TRACKERS = {
    "wandb": ("ray.air.integrations.wandb", "WandbLoggerCallback", "wandb"),
    "mlflow": ("ray.air.integrations.mlflow", "MLflowLoggerCallback", "mlflow"),
}
# Those of `checkpoint_config`, as ray.tune.CheckpointConfig takes them.
CHECKPOINT_KEYS = (
    "checkpoint_frequency",
    "checkpoint_at_end",
    "num_to_keep",
    "checkpoint_score_attribute",
    "checkpoint_score_order",
)
RETURNS_KEY = ("env_runners", "policy_reward_mean")


class UsageError(Exception):
    """Bad user input: printed as one `rllib: error: <message>` line, exit code 2."""


# ----------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------

_TRAIN_EPILOG = """\
YAML format (one or more experiments; the old RLlib format):

  my_experiment:                  # name of the results directory
    run: MADDPG                   # a trainable registered with Tune
    env: mpe/simple_spread        # or config.env
    stop: {training_iteration: 100, num_env_steps_sampled_lifetime: 1000000}
    config: {actor_lr: 0.01, tau: {grid_search: [0.01, 0.05]}}
    checkpoint_config: {checkpoint_frequency: 10, checkpoint_at_end: true, num_to_keep: 3}
    storage_path: ~/ray_results   # optional
    num_samples: 1                # optional
    wandb: {project: my-project}  # optional: also log to Weights & Biases
    mlflow: {tracking_uri: file:///tmp/mlruns}  # optional: also log to MLflow

Results go to STORAGE_PATH/<experiment name>, one sub-directory per trial, with
TensorBoard event files, progress.csv, result.json and checkpoint_NNNNNN/
directories. An existing directory is never reused: if
STORAGE_PATH/<experiment name> exists, this run goes to
STORAGE_PATH/<experiment name>_<date>_<time> instead (printed at the start).
Unless the file or a flag says otherwise, a checkpoint is saved at the end.

Tracking: TensorBoard files are always written. `wandb:` / `--wandb-project`
add Tune's WandbLoggerCallback (WANDB_MODE=offline logs to disk only), and
`mlflow:` / `--mlflow-tracking-uri` add its MLflowLoggerCallback (the MLflow
experiment is named after the experiment unless experiment_name is given);
both need `pip install 'rllib-maddpg[tracking]'`.

Resuming: `rllib train file X.yaml --resume` continues the newest run of each
experiment of X.yaml (STORAGE_PATH/<name> or <name>_<date>_<time>) in its own
directory, after a kill, a crash or Ctrl-C: unfinished and errored trials
restart from their last checkpoint that Tune recorded (weights, optimizer
states, env-step counters; the replay buffer only with
store_buffer_in_checkpoints), finished trials stay as they are, and the config,
stop criteria and checkpoint settings are those the run started with.
`--resume PATH` names the experiment directory. Nothing is overwritten: a
checkpoint written after Tune's last record of the run (the driver was killed
in between) is moved aside to unrecorded_checkpoint_NNNNNN/. Iterations after
the last checkpoint run again and appear twice in progress.csv/result.json.

Progress: one line per trial per training iteration with the env steps so far,
env steps/s in that iteration, the mean episode return per policy ("-" until
an episode finished) and the elapsed time; each checkpoint's path; why each
trial ended; and a summary. Exit code: 0 ok, 1 a trial errored, 2 bad input.
"""

_EVALUATE_EPILOG = """\
CHECKPOINT is a checkpoint directory (checkpoint_NNNNNN), or a trial directory
(its latest checkpoint is used). The policies are restored from
CHECKPOINT/policies/<policy id> and the env is built from the config saved in
them: every agent acts from its own observation only (decentralized execution),
without Ray. Prints the mean (std, min, max) episode return of each agent and
of the team (sum over agents).

  rllib evaluate ~/ray_results/spread/MADDPG_mpe_simple_spread_0_.../checkpoint_000009 \\
      --episodes 20 --render spread.gif
"""


def _add_train_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options of `rllib train` and `rllib train file`.

    They are accepted at both levels; in the `file` sub-parser they default to
    SUPPRESS so that argparse does not overwrite values given before `file`.
    """

    def default(value):
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--stop", metavar="JSON", default=default(None),
        help="stop criteria as JSON, merged over the file's `stop` "
        "(e.g. '{\"training_iteration\": 10}').",
    )
    parser.add_argument(
        "--config", metavar="JSON", default=default(None),
        help="config as JSON, deep-merged over the file's `config` "
        "(e.g. '{\"actor_lr\": 0.001, \"env_config\": {\"N\": 4}}').",
    )
    parser.add_argument(
        "--storage-path", metavar="PATH", default=default(None),
        help="where results go; overrides the file's storage_path "
        "(default: the file's, else Tune's default ~/ray_results).",
    )
    parser.add_argument(
        "--checkpoint-freq", metavar="N", type=int, default=default(None),
        help="save a checkpoint every N training iterations "
        "(overrides checkpoint_config.checkpoint_frequency; 0 = never).",
    )
    parser.add_argument(
        "--checkpoint-at-end", action=argparse.BooleanOptionalAction, default=default(None),
        help="save a checkpoint when a trial ends (overrides "
        "checkpoint_config.checkpoint_at_end; default: on).",
    )
    parser.add_argument(
        "--wandb-project", metavar="NAME", default=default(None),
        help="also log every trial to this Weights & Biases project (sets the file's "
        "wandb.project; needs the `tracking` extra).",
    )
    parser.add_argument(
        "--mlflow-tracking-uri", metavar="URI", default=default(None),
        help="also log every trial to MLflow at this tracking URI, e.g. file:///tmp/mlruns "
        "(sets the file's mlflow.tracking_uri; needs the `tracking` extra).",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR", default=default(None),
        help="connect to this running Ray cluster (e.g. 'auto' or HOST:6379) "
        "instead of starting a local one.",
    )
    parser.add_argument(
        "--ray-num-cpus", metavar="N", type=int, default=default(None),
        help="CPUs of the local Ray instance started for this run (default: all).",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=default(0),
        help="more output: -v adds Tune's status tables, Ray's worker logs and "
        "tracebacks; -vv also Tune's debug logs.",
    )
    parser.add_argument(
        "--resume", metavar="PATH", nargs="?", const=True, default=default(None),
        help="continue a killed or failed run in its own directory, each unfinished "
        "trial from its last checkpoint (see below). Without PATH: the newest run "
        "of each experiment in the file; PATH: that experiment directory. Give it "
        "after the YAML file.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rllib",
        description="Train RLlib algorithms (MADDPG and others registered with Tune) "
        "from YAML files and evaluate their checkpoints. Old API stack; Ray 2.60.",
        epilog="Run `rllib train file --help` or `rllib evaluate --help` for details.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{train,evaluate}")
    commands.required = True

    train = commands.add_parser(
        "train",
        help="train from a YAML experiment file",
        description="Train from a YAML experiment file: `rllib train file X.yaml` "
        "(or `rllib train -f X.yaml`).",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "-f", "--config-file", dest="train_file_opt", metavar="X.yaml",
        help="the YAML experiment file (same as `rllib train file X.yaml`).",
    )
    _add_train_options(train, suppress=False)
    train_commands = train.add_subparsers(dest="train_command", metavar="{file}")
    train_file = train_commands.add_parser(
        "file",
        help="train the experiments of a YAML file",
        description="Train the experiments of a YAML file (old RLlib format), "
        "one Ray Tune run per experiment, and report progress.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_file.add_argument("train_file", metavar="X.yaml", help="the YAML experiment file.")
    _add_train_options(train_file, suppress=True)
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="run a trained checkpoint for N episodes (optionally render a GIF)",
        description="Run a checkpoint's policies for N episodes and print the returns.",
        epilog=_EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint or trial directory.")
    evaluate.add_argument(
        "--subpolicy", type=int, default=None, metavar="K",
        help="policy ensembles: act with sub-policy K (default: draw one per agent per episode).",
    )
    evaluate.add_argument(
        "--metrics", action="store_true",
        help="also print the paper's task metrics of the scenario (target reach, "
        "success rates, touches, ...; see rllib_maddpg/envs/mpe_metrics.py).",
    )
    evaluate.add_argument(
        "--episodes", type=int, default=10, metavar="N", help="episodes to run (default 10)."
    )
    evaluate.add_argument(
        "--render", metavar="OUT.gif",
        help="record the first episode (env_config render_mode='rgb_array') as an animated GIF.",
    )
    evaluate.add_argument(
        "--fps", type=float, default=10.0, help="frames per second of the GIF (default 10)."
    )
    evaluate.add_argument(
        "--seed", type=int, default=None,
        help="seed of the env (episode k uses SEED + k) and of the exploration noise.",
    )
    evaluate.add_argument(
        "--explore", action="store_true",
        help="act with exploration noise, as during training (default: deterministic).",
    )
    evaluate.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="show tracebacks and library warnings.",
    )
    evaluate.set_defaults(handler=cmd_evaluate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    _quiet_libraries(verbose)
    try:
        return args.handler(args)
    except UsageError as e:
        if verbose and e.__cause__ is not None:
            traceback.print_exception(e.__cause__)
        print(f"rllib: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rllib: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `rllib evaluate ... | head`
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the last resort: one line, traceback with -v
        if verbose:
            traceback.print_exc()
        else:
            print("(run with -v for the traceback)", file=sys.stderr)
        print(f"rllib: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_TRIAL_ERROR


def _quiet_libraries(verbose: int) -> None:
    """Keep library warnings (gymnasium, RLlib deprecations) off the progress output."""
    if verbose:
        return
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # Ray workers too
    for name in ("ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ----------------------------------------------------------------------------
# rllib train
# ----------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    path = getattr(args, "train_file", None) or args.train_file_opt
    if getattr(args, "train_file", None) and args.train_file_opt:
        raise UsageError("give the YAML file once: `rllib train file X.yaml` or `rllib train -f X.yaml`")
    if not path:
        raise UsageError("no YAML file given: use `rllib train file X.yaml` (see `rllib train --help`)")
    if args.ray_address and args.ray_num_cpus is not None:
        raise UsageError("--ray-num-cpus only applies to a local Ray; drop it when using --ray-address")
    if args.ray_num_cpus is not None and args.ray_num_cpus < 1:
        raise UsageError(f"--ray-num-cpus must be >= 1, got {args.ray_num_cpus}")
    if args.checkpoint_freq is not None and args.checkpoint_freq < 0:
        raise UsageError(f"--checkpoint-freq must be >= 0, got {args.checkpoint_freq}")
    if args.resume is not None:
        fixed = [flag for flag, value in (
            ("--stop", args.stop), ("--config", args.config),
            ("--checkpoint-freq", args.checkpoint_freq),
            ("--checkpoint-at-end", args.checkpoint_at_end),
        ) if value is not None]
        if fixed:
            raise UsageError(
                f"--resume continues a run with the config, stop criteria and checkpoint "
                f"settings it started with; drop {', '.join(fixed)} (or start a new run "
                "without --resume)"
            )
    stop_override = _parse_json_flag("--stop", args.stop)
    config_override = _parse_json_flag("--config", args.config)
    experiments = load_experiment_file(path)

    import rllib_maddpg  # noqa: F401  (registers MADDPG and the mpe/<scenario> envs)

    specs = [
        prepare_experiment(name, raw, stop_override, config_override, args)
        for name, raw in experiments.items()
    ]
    resumes: List[Optional[Dict[str, Any]]] = [None] * len(specs)
    locks = []  # held (open) until this command ends; the OS drops them if it dies
    if args.resume is not None:
        run_dirs = [find_resume_dir(spec, args.resume, len(specs)) for spec in specs]
        locks = [lock_run_dir(run_dir) for run_dir in run_dirs if "://" not in run_dir]
        resumes = [prepare_resume(spec, run_dir) for spec, run_dir in zip(specs, run_dirs)]
        specs = [spec for spec, plan in zip(specs, resumes) if plan is not None]
        resumes = [plan for plan in resumes if plan is not None]
        if not specs:
            return EXIT_OK  # every trial of every run had finished
    if all("://" not in spec.storage_path for spec in specs):
        # Tune saves its record of the run (which checkpoint is each trial's
        # latest) every >= 10 s by default; a run killed in between resumes
        # from an older checkpoint. Local files are cheap to write more often.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")

    import ray

    if args.verbose < 1:
        # The progress lines replace Tune's own console output.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init_kwargs: Dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": args.verbose >= 1,
        "logging_level": logging.INFO if args.verbose >= 1 else logging.WARNING,
    }
    if args.ray_address:
        init_kwargs["address"] = args.ray_address
    else:
        init_kwargs["num_cpus"] = args.ray_num_cpus
    if args.verbose >= 2:
        logging.getLogger("ray.tune").setLevel(logging.DEBUG)
    elif args.verbose == 0:
        # Tune logs a failed trial's whole traceback; the progress output names
        # the error and its file instead.
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)

    exit_code = EXIT_OK
    ray.init(**init_kwargs)
    try:
        if not args.ray_address:
            for spec in specs:
                _check_resources(spec)
        for spec, resume in zip(specs, resumes):
            code = (resume_experiment(spec, args.verbose, resume) if resume
                    else run_experiment(spec, args.verbose, locks))
            if code == EXIT_INTERRUPTED:
                return code  # Ctrl-C: do not start the next experiments
            exit_code = max(exit_code, code)
    finally:
        ray.shutdown()
        for lock in locks:
            lock.close()
    return exit_code


def _parse_json_flag(flag: str, text: Optional[str]) -> Dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{flag} is not valid JSON ({e.msg} at column {e.colno}): {text!r}. "
            f"Quote it for the shell, e.g. {flag} '{{\"training_iteration\": 10}}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object ({{...}}), got {text!r}")
    return value


def load_experiment_file(path: str) -> Dict[str, Dict[str, Any]]:
    """Reads the YAML file: {experiment name: {run, env, stop, config, ...}}."""
    import yaml

    if not os.path.exists(path):
        raise UsageError(f"experiment file not found: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a YAML experiment file")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise UsageError(f"{path} is not valid YAML: {_yaml_error_text(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(
            f"{path} must map experiment names to experiments, e.g. "
            f"`my_experiment: {{run: MADDPG, env: mpe/simple_spread, stop: ...}}`; "
            f"found {'nothing' if data is None else type(data).__name__}"
        )
    experiments = {}
    for name, raw in data.items():
        name = str(name)
        if not isinstance(raw, dict):
            raise UsageError(
                f"experiment {name!r} in {path} must be a mapping with keys "
                f"{sorted(EXPERIMENT_KEYS)}, got {type(raw).__name__}"
            )
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise UsageError(f"experiment name {name!r} cannot be a directory name; rename it")
        experiments[name] = raw
    return experiments


def _yaml_error_text(error) -> str:
    """`<problem> (line L, column C)`, plus where the enclosing construct started."""

    def at(mark) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
    if not problem or mark is None:
        return " ".join(str(error).split())
    text = f"{problem} at {at(mark)}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark.line != mark.line:
        text += f" ({context} that starts at {at(context_mark)})"
    return text


@dataclasses.dataclass
class ExperimentSpec:
    """One validated experiment, ready for ray.tune.Tuner."""

    name: str
    run: str
    trainable: Any
    config: Dict[str, Any]  # may hold grid_search values (Tune resolves them)
    stop: Dict[str, Any]  # flat `a/b` keys
    checkpoint_config: Dict[str, Any]  # ray.tune.CheckpointConfig kwargs
    storage_path: str
    num_samples: int
    num_trials: int
    first_variant: Optional[Dict[str, Any]]  # config with grids at their first value
    trackers: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)  # TRACKERS key -> kwargs

    def tracking_callbacks(self) -> List[Any]:
        return [tracker_class(key, "")(**kwargs) for key, kwargs in self.trackers.items()]


def prepare_experiment(
    name: str,
    raw: Dict[str, Any],
    stop_override: Dict[str, Any],
    config_override: Dict[str, Any],
    args: argparse.Namespace,
) -> ExperimentSpec:
    """Checks one experiment from the file and applies the command-line flags."""
    where = f"experiment {name!r}"
    unknown = [k for k in raw if k not in EXPERIMENT_KEYS]
    if unknown:
        hints = _did_you_mean(unknown[0], EXPERIMENT_KEYS)
        raise UsageError(
            f"{where}: unknown key(s) {unknown}.{hints} Allowed keys: "
            f"{', '.join(EXPERIMENT_KEYS)} (see `rllib train file --help`)."
        )

    run = raw.get("run")
    if not isinstance(run, str) or not run:
        raise UsageError(f"{where}: `run` is missing; set it to a trainable, e.g. `run: MADDPG`")
    trainable = resolve_trainable(run, where)

    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise UsageError(f"{where}: `config` must be a mapping, got {type(config).__name__}")
    config = _deep_merge(config, config_override)
    env = raw.get("env")
    if env is not None and config.get("env") is not None and env != config["env"]:
        raise UsageError(
            f"{where}: the env is given twice, as env: {env!r} and config.env: "
            f"{config['env']!r}; keep one"
        )
    if env is not None:
        config["env"] = env
    if config.get("env") is None:
        raise UsageError(
            f"{where}: no env; add e.g. `env: mpe/simple_spread` (or config.env). "
            f"MPE scenarios: {_mpe_env_names()}"
        )
    for grid_path, values in _find_grids(config):
        if not isinstance(values, list) or not values:
            raise UsageError(
                f"{where}: config.{'.'.join(map(str, grid_path))}: grid_search needs a "
                f"non-empty list of values, got {values!r}"
            )
    _check_env_name(config["env"], where)

    stop = raw.get("stop") or {}
    if not isinstance(stop, dict):
        raise UsageError(f"{where}: `stop` must be a mapping, e.g. {{training_iteration: 100}}")
    stop = _flatten_stop({**_flatten_stop(stop, where), **_flatten_stop(stop_override, "--stop")}, where)

    checkpoint_config = _checkpoint_config(raw.get("checkpoint_config"), args, where)

    storage_path = getattr(args, "storage_path", None) or raw.get("storage_path")
    if storage_path is None:
        from ray.train.constants import DEFAULT_STORAGE_PATH

        storage_path = DEFAULT_STORAGE_PATH
    if not isinstance(storage_path, str):
        raise UsageError(f"{where}: storage_path must be a path, got {storage_path!r}")
    if "://" not in storage_path:
        storage_path = os.path.abspath(os.path.expanduser(storage_path))
        if os.path.exists(storage_path) and not os.path.isdir(storage_path):
            raise UsageError(f"{where}: storage_path {storage_path} exists and is not a directory")

    num_samples = raw.get("num_samples", 1)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise UsageError(f"{where}: num_samples must be an integer >= 1, got {num_samples!r}")

    first_variant = validate_config(trainable, config, where)
    num_trials = num_samples * math.prod(len(values) for _, values in _find_grids(config))
    return ExperimentSpec(
        name=name, run=run, trainable=trainable, config=config, stop=stop,
        checkpoint_config=checkpoint_config, storage_path=storage_path,
        num_samples=num_samples, num_trials=num_trials, first_variant=first_variant,
        trackers=_trackers(raw, args, name, where),
    )


def tracker_class(key: str, where: str):
    """Tune's logger callback for a TRACKERS key; a clear error if its package is missing."""
    import importlib

    module, name, package = TRACKERS[key]
    try:
        importlib.import_module(package)
    except ImportError:
        raise UsageError(
            f"{where + ': ' if where else ''}`{key}` tracking needs the {package} package: "
            "pip install 'rllib-maddpg[tracking]'"
        ) from None
    return getattr(importlib.import_module(module), name)


def _trackers(raw: Dict[str, Any], args: argparse.Namespace, name: str, where: str) -> Dict[str, Dict]:
    """The tracking callbacks' arguments, from the file's `wandb:`/`mlflow:` and the flags."""
    trackers = {}
    for key in TRACKERS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise UsageError(
                f"{where}: `{key}` must be a mapping of {TRACKERS[key][1]} arguments, "
                f"e.g. {EXPERIMENT_KEYS[key].split('e.g. ')[-1]}"
            )
        trackers[key] = dict(value)
    if getattr(args, "wandb_project", None):
        trackers.setdefault("wandb", {})["project"] = args.wandb_project
    if getattr(args, "mlflow_tracking_uri", None):
        trackers.setdefault("mlflow", {})["tracking_uri"] = args.mlflow_tracking_uri
    if "mlflow" in trackers:
        trackers["mlflow"].setdefault("experiment_name", name)
    for key, kwargs in trackers.items():
        cls = tracker_class(key, where)
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(kwargs) - set(params))
            if unknown:
                raise UsageError(
                    f"{where}: `{key}` has unknown argument(s) {unknown}; {cls.__name__} takes "
                    f"{', '.join(p for p in params if p != 'self')}"
                )
    return trackers


def _did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(str(word), list(candidates), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _deep_merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "grid_search" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _flatten_stop(stop: Dict[str, Any], where: str, prefix: str = "") -> Dict[str, Any]:
    """Nested stop mappings -> Tune's flat `a/b` keys; values must be numbers."""
    flat = {}
    for key, value in stop.items():
        key = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_stop(value, where, prefix=f"{key}/"))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(
                f"{where}: stop criterion {key!r} must be a number (a trial stops when "
                f"result[{key!r}] >= it), got {value!r}"
            )
        else:
            flat[key] = value
    return flat


def _checkpoint_config(raw: Any, args: argparse.Namespace, where: str) -> Dict[str, Any]:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: checkpoint_config must be a mapping with keys {list(CHECKPOINT_KEYS)}")
    unknown = [k for k in raw if k not in CHECKPOINT_KEYS]
    if unknown:
        raise UsageError(
            f"{where}: unknown checkpoint_config key(s) {unknown}."
            f"{_did_you_mean(unknown[0], CHECKPOINT_KEYS)} Allowed: {list(CHECKPOINT_KEYS)}"
        )
    cfg = dict(raw)
    if getattr(args, "checkpoint_freq", None) is not None:
        cfg["checkpoint_frequency"] = args.checkpoint_freq
    if getattr(args, "checkpoint_at_end", None) is not None:
        cfg["checkpoint_at_end"] = args.checkpoint_at_end
    cfg.setdefault("checkpoint_at_end", True)  # never lose the trained policies
    from ray.tune import CheckpointConfig

    try:
        CheckpointConfig(**cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{where}: invalid checkpoint_config {cfg}: {e}") from e
    return cfg


def resolve_trainable(run: str, where: str):
    """The trainable class for `run`: registered with Tune, or one of RLlib's algorithms."""
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    if _global_registry.contains(TRAINABLE_CLASS, run):
        return _global_registry.get(TRAINABLE_CLASS, run)
    from ray.rllib.algorithms.registry import ALGORITHMS

    if run in ALGORITHMS:
        try:
            return ALGORITHMS[run]()[0]
        except ImportError as e:
            raise UsageError(f"{where}: cannot import RLlib's {run}: {e}") from e
    known = ["MADDPG", *ALGORITHMS]
    raise UsageError(
        f"{where}: run: {run!r} is not a registered trainable.{_did_you_mean(run, known)} "
        f"Known: {', '.join(known)}"
    )


def _mpe_env_names() -> str:
    from rllib_maddpg.envs import MPE_SCENARIOS

    return ", ".join(f"mpe/{s}" for s in MPE_SCENARIOS)


def _check_env_name(env: Any, where: str) -> None:
    """A friendlier error than RLlib's for env names that are registered nowhere."""
    if not isinstance(env, str):
        return
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, env) or "." in env or ":" in env:
        return
    import gymnasium as gym

    if env in gym.registry:
        return
    from rllib_maddpg.envs import MPE_SCENARIOS

    mpe = [f"mpe/{s}" for s in MPE_SCENARIOS]
    raise UsageError(
        f"{where}: unknown env {env!r}: it is not registered with Tune, not a gymnasium "
        f"id and not a class path.{_did_you_mean(env, mpe)} MPE envs: {', '.join(mpe)}"
    )


def _find_grids(node: Any, path: Tuple = ()) -> List[Tuple[Tuple, Any]]:
    """(path, values) of every {grid_search: values} in the config."""
    if isinstance(node, dict):
        if set(node) == {"grid_search"}:
            return [(path, node["grid_search"])]
        return [g for key, value in node.items() for g in _find_grids(value, path + (key,))]
    return []


def _set_path(config: Dict[str, Any], path: Tuple, value: Any) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


def _config_variants(config: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """Configs to validate: all grids at their first value, then each other value once."""
    grids = _find_grids(config)
    first = copy.deepcopy(config)
    for path, values in grids:
        _set_path(first, path, copy.deepcopy(values[0]))
    yield "", first
    for path, values in grids:
        for value in values[1:]:
            variant = copy.deepcopy(first)
            _set_path(variant, path, copy.deepcopy(value))
            yield f" (grid_search value {'.'.join(map(str, path))}={value!r})", variant


def validate_config(trainable, config: Dict[str, Any], where: str):
    """Builds and validates the algorithm config of every grid value.

    Returns the config dict with every grid at its first value (None if the
    trainable is no RLlib Algorithm).

    For an RLlib Algorithm: `AlgorithmConfig.update_from_dict(config).validate()`
    (MADDPG's rejects unknown keys and bad values and builds the env once).
    """
    from ray.rllib.algorithms.algorithm import Algorithm

    if not (isinstance(trainable, type) and (
            issubclass(trainable, Algorithm) or hasattr(trainable, "get_default_config"))):
        return None
    first = None
    for label, variant in _config_variants(config):
        try:
            algo_config = trainable.get_default_config()
            if isinstance(algo_config, dict):  # a very old-style algorithm: nothing to check
                return None
            algo_config = algo_config.update_from_dict(variant)
            algo_config.validate()
        except Exception as e:  # noqa: BLE001 - any failure here is a config problem
            message = str(e).strip() or type(e).__name__
            raise UsageError(f"{where}: invalid config{label}: {message}") from e
        if first is None:
            first = variant
    return first


def _check_resources(spec: ExperimentSpec) -> None:
    """Refuse a trial that can never start on this local Ray (Tune would wait forever)."""
    import ray

    if spec.first_variant is None:
        return
    try:
        # A dict, as Tune passes it (MADDPGConfig.update_from_dict cannot take a config object).
        request = spec.trainable.default_resource_request(copy.deepcopy(spec.first_variant))
        need = request.required_resources.get("CPU", 0) if request is not None else 0
    except Exception:  # noqa: BLE001 - best effort only
        return
    have = ray.cluster_resources().get("CPU", 0)
    if need > have:
        raise UsageError(
            f"experiment {spec.name!r}: one trial needs {need:g} CPUs but this Ray has "
            f"{have:g}; lower config.num_env_runners (each takes a CPU) or raise --ray-num-cpus"
        )


def _choose_run_name(storage_path: str, name: str) -> str:
    """The experiment directory name of a new run: never an existing one.

    Tune would add new trials into an existing experiment directory and mix
    them with the old ones; instead a new run gets `<name>_<date>_<time>`.
    (`--resume` continues in an existing one: find_resume_dir.)
    """
    if "://" in storage_path or not os.path.exists(os.path.join(storage_path, name)):
        return name
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    candidate, k = f"{name}_{stamp}", 1
    while os.path.exists(os.path.join(storage_path, candidate)):
        k += 1
        candidate = f"{name}_{stamp}_{k}"
    return candidate


# ----------------------------------------------------------------------------
# --resume
# ----------------------------------------------------------------------------

_TUNER_STATE = "tuner.pkl"
_EXPERIMENT_STATE_GLOB = "experiment_state-*.json"
_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d{6})$")


def _is_run_dir(path: str) -> bool:
    """A Tune experiment directory that Tuner.restore can continue."""
    return os.path.isfile(os.path.join(path, _TUNER_STATE)) and bool(
        glob.glob(os.path.join(glob.escape(path), _EXPERIMENT_STATE_GLOB))
    )


def _state_time(path: str) -> float:
    return max(os.path.getmtime(f) for f in glob.glob(os.path.join(glob.escape(path), _EXPERIMENT_STATE_GLOB)))


def find_resume_dir(spec: ExperimentSpec, resume: Any, num_experiments: int) -> str:
    """The experiment directory `--resume` continues (checked before Ray starts).

    `resume` is True (the newest run of this experiment: STORAGE_PATH/<name>
    or one of the <name>_<date>_<time> directories _choose_run_name makes) or
    a path given on the command line.
    """
    if resume is not True:
        path = os.path.abspath(os.path.expanduser(str(resume)))
        if num_experiments > 1:
            raise UsageError(
                f"--resume {resume} names one experiment directory, but the file has "
                f"{num_experiments} experiments; give --resume without PATH to resume "
                "the newest run of each"
            )
        if os.path.isfile(path) and path.endswith((".yaml", ".yml")):
            raise UsageError(
                f"--resume takes an experiment directory, not {resume}: put --resume after "
                "the YAML file, `rllib train file X.yaml --resume [DIR]`"
            )
        if not _is_run_dir(path):
            raise UsageError(
                f"--resume {resume}: {path} is not a Tune experiment directory (no "
                f"{_TUNER_STATE} and {_EXPERIMENT_STATE_GLOB}); give STORAGE_PATH/<experiment "
                "name> as printed by `rllib train` (\"results: ...\")"
            )
        return path
    storage, name = spec.storage_path, spec.name
    if "://" in storage:  # remote storage: no listing here, Tune checks it
        return f"{storage.rstrip('/')}/{name}"
    stamped = re.compile(re.escape(name) + r"_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?$")
    candidates = [os.path.join(storage, name)] + [
        os.path.join(storage, d) for d in (os.listdir(storage) if os.path.isdir(storage) else [])
        if stamped.match(d)
    ]
    runs = [c for c in candidates if _is_run_dir(c)]
    if not runs:
        raise UsageError(
            f"experiment {name!r}: nothing to resume, no run under {storage} "
            f"({name}/ or {name}_<date>_<time>/ with a Tune experiment state); "
            "start it without --resume"
        )
    return max(runs, key=_state_time)


def _recorded_trials(run_dir: str) -> List[Any]:
    """The trials (ray.tune Trial stubs) as Tune last recorded them in run_dir."""
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
    from ray.tune.experiment.trial import Trial
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    state_file = _find_newest_experiment_checkpoint(run_dir)
    if state_file is None:
        return []
    with open(state_file, "rb") as f:
        state = _loads_with_cloudpickle(f.read())
    trials = []
    for json_state, run_metadata in state["trial_data"]:
        trial = Trial.from_json_state(json_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        trials.append(trial)
    return trials


def _set_aside_unrecorded_checkpoints(trial_dir: str, recorded: Optional[str]) -> List[Tuple[str, str]]:
    """Moves checkpoints newer than the recorded latest one out of Tune's way.

    A checkpoint is written to disk before the driver records it; if the
    driver died in between, the resumed trial restarts from the recorded one
    and would write its next checkpoints under the same names. Returns the
    (old, new) paths.
    """
    match = _CHECKPOINT_DIR.search(os.path.basename(recorded or ""))
    latest = int(match.group(1)) if match else -1
    moved = []
    for entry in sorted(os.listdir(trial_dir)) if os.path.isdir(trial_dir) else []:
        found = _CHECKPOINT_DIR.match(entry)
        if not found or int(found.group(1)) <= latest:
            continue
        old = os.path.join(trial_dir, entry)
        new, k = os.path.join(trial_dir, f"unrecorded_{entry}"), 1
        while os.path.exists(new):
            k += 1
            new = os.path.join(trial_dir, f"unrecorded_{entry}_{k}")
        os.rename(old, new)
        moved.append((old, new))
    return moved


RUN_LOCK_FILE = ".rllib_train.lock"


def lock_run_dir(run_dir: str):
    """Takes the run directory's lock for this process, or refuses: one `rllib
    train` at a time writes a run (its first run or a --resume of it).

    An flock on a file in the directory: the OS releases it when the holder
    exits, however it dies, so a killed run never leaves a stale lock.
    """
    import fcntl

    os.makedirs(run_dir, exist_ok=True)
    lock = open(os.path.join(run_dir, RUN_LOCK_FILE), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise UsageError(
            f"{run_dir} is being written by another `rllib train` (pid {holder}), which "
            "started or resumed it: wait for it to end, or stop it, then run --resume again"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def prepare_resume(spec: ExperimentSpec, run_dir: str) -> Optional[Dict[str, Any]]:
    """Prints what --resume will do and sets aside unrecorded checkpoints.

    Returns {"run_dir", "num_trials"}, or None if every trial had finished.
    """
    trials = _recorded_trials(run_dir) if "://" not in run_dir else []
    finished = [t for t in trials if t.status == "TERMINATED"]
    to_resume = [t for t in trials if t.status != "TERMINATED"]
    print(f"== {spec.name}: resuming {run_dir}", flush=True)
    if trials and not to_resume:
        print(f"   nothing to resume: all {len(trials)} trials finished", flush=True)
        return None
    if finished:
        print(f"   {len(finished)} finished trial(s) stay as they are", flush=True)
    for trial in to_resume:
        trial_dir = os.path.join(run_dir, trial.storage.trial_dir_name)
        recorded = trial.checkpoint.path if trial.checkpoint else None
        start = (f"from {os.path.basename(recorded)}" if recorded
                 else "from scratch (no checkpoint recorded)")
        errored = " (errored)" if trial.status == "ERROR" else ""
        print(f"   {_trial_label(trial)}{errored}: restarts {start}", flush=True)
        for old, new in _set_aside_unrecorded_checkpoints(trial_dir, recorded):
            print(f"      {os.path.basename(old)} was written after Tune's last record of "
                  f"the run; moved aside to {os.path.basename(new)}", flush=True)
    return {"run_dir": run_dir, "num_trials": len(trials)}


def run_experiment(spec: ExperimentSpec, verbose: int, locks: Optional[List] = None) -> int:
    from ray import tune

    run_name = _choose_run_name(spec.storage_path, spec.name)
    run_dir = os.path.join(spec.storage_path, run_name)
    if "://" not in run_dir and locks is not None:
        locks.append(lock_run_dir(run_dir))  # a --resume of this run is refused until it ends
    stop_text = ", ".join(f"{k} >= {v:g}" for k, v in spec.stop.items()) or "none (Ctrl-C stops)"
    print(
        f"== {spec.name}: {spec.run} on {spec.config['env']}, {spec.num_trials} "
        f"trial{'s' if spec.num_trials != 1 else ''}, stop: {stop_text}",
        flush=True,
    )
    if run_name != spec.name:
        print(f"   {os.path.join(spec.storage_path, spec.name)} exists; not touching it.")
    print(f"   results: {run_dir}", flush=True)

    progress = Progress(spec.stop, several_trials=spec.num_trials > 1)
    tuner = tune.Tuner(
        spec.trainable,
        param_space=spec.config,
        tune_config=tune.TuneConfig(num_samples=spec.num_samples),
        run_config=tune.RunConfig(
            name=run_name,
            stop=spec.stop or None,
            storage_path=spec.storage_path,
            checkpoint_config=tune.CheckpointConfig(**spec.checkpoint_config),
            callbacks=[_tune_callback(progress)] + spec.tracking_callbacks(),
            verbose=min(verbose, 2),
        ),
    )
    start = time.time()
    try:
        tuner.fit()
    finally:
        progress.print_summary(spec.name, run_dir, time.time() - start)
    return _exit_code(progress)


def _exit_code(progress: "Progress") -> int:
    if progress.any_error():
        return EXIT_TRIAL_ERROR
    # Tune handles Ctrl-C itself: it stops the trials and fit() returns.
    interrupted = progress.any_interrupted() or not progress.trials
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def resume_experiment(spec: ExperimentSpec, verbose: int, plan: Dict[str, Any]) -> int:
    """`--resume`: Tuner.restore of the run, unfinished and errored trials from their checkpoints."""
    from ray import tune

    run_dir = plan["run_dir"]
    try:
        tuner = tune.Tuner.restore(
            run_dir, trainable=spec.trainable,
            resume_unfinished=True, resume_errored=True, restart_errored=False,
        )
    except ValueError as e:  # e.g. the file's `run` is not the trainable the run used
        raise UsageError(f"cannot resume {run_dir}: {e}") from e
    # The run config comes back from the run's tuner.pkl with its stop criteria
    # and checkpoint settings; only the progress printer is this process's own.
    # (Tuner has no public way to swap callbacks on restore.)
    run_config = tuner._local_tuner.get_run_config()
    stop = dict(run_config.stop or {}) if isinstance(run_config.stop, dict) else {}
    progress = Progress(stop, several_trials=(plan["num_trials"] or spec.num_trials) > 1)
    run_config.callbacks = [
        cb for cb in (run_config.callbacks or []) if type(cb).__name__ != "ProgressCallback"
    ] + [_tune_callback(progress)]
    start = time.time()
    try:
        tuner.fit()
    finally:
        progress.print_summary(spec.name, run_dir, time.time() - start)
    return _exit_code(progress)


# ----------------------------------------------------------------------------
# Progress output
# ----------------------------------------------------------------------------


def _fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds or 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt_return(value: Any) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(value) else f"{value:.2f}"


def _returns(result: Dict[str, Any]) -> Dict[str, Any]:
    """Mean episode return per policy, from a nested or Tune-flattened result."""
    nested = (result.get(RETURNS_KEY[0]) or {}).get(RETURNS_KEY[1])
    if nested is None:
        nested = result.get("/".join(RETURNS_KEY))
    if isinstance(nested, dict):
        return dict(nested)
    prefix = "/".join(RETURNS_KEY) + "/"
    return {k[len(prefix):]: v for k, v in result.items() if isinstance(k, str) and k.startswith(prefix)}


def _fmt_returns(returns: Dict[str, Any]) -> str:
    if not returns:
        return "return -"
    parts = " ".join(f"{pid}={_fmt_return(v)}" for pid, v in sorted(returns.items()))
    values = [float(v) for v in returns.values() if _fmt_return(v) != "-"]
    team = f" (sum {sum(values):.2f})" if len(returns) > 1 and len(values) == len(returns) else ""
    return f"return {parts}{team}"


def _flatten(result: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _trial_label(trial) -> str:
    """`trial 0`, or the grid values of the trial (`0_tau=0.0100`)."""
    tag = getattr(trial, "experiment_tag", "") or trial.trial_id
    return (tag if "=" in tag else f"trial {tag}")[:40]


class TrialRecord:
    def __init__(self, label: str):
        self.label = label
        self.path: Optional[str] = None
        self.last_result: Dict[str, Any] = {}
        self.checkpoint: Optional[str] = None
        self.status = "RUNNING"
        self.reason = ""
        self.error_file: Optional[str] = None


class Progress:
    """What `rllib train` prints while Tune runs (driven by a tune.Callback)."""

    def __init__(self, stop: Dict[str, Any], several_trials: bool, out=None):
        self.stop = stop
        self.several_trials = several_trials
        self.out = out or sys.stdout
        self.trials: Dict[str, TrialRecord] = {}
        self._stop_keys_checked = False

    def _print(self, text: str, err: bool = False) -> None:
        print(text, file=sys.stderr if err else self.out, flush=True)

    def record(self, trial) -> TrialRecord:
        if trial.trial_id not in self.trials:
            self.trials[trial.trial_id] = TrialRecord(_trial_label(trial))
        rec = self.trials[trial.trial_id]
        rec.path = rec.path or getattr(trial, "path", None)
        return rec

    def _prefix(self, rec: TrialRecord) -> str:
        return f"[{rec.label}] " if self.several_trials else ""

    def on_start(self, trial) -> None:
        self.record(trial)

    def on_result(self, trial, result: Dict[str, Any]) -> None:
        rec = self.record(trial)
        rec.last_result = result
        steps = result.get("num_env_steps_sampled_lifetime")
        this_iter = result.get("num_env_steps_sampled_this_iter")
        seconds = result.get("time_this_iter_s")
        rate = f"{this_iter / seconds:7.0f}" if this_iter and seconds else "      -"
        steps_text = f"{steps:>10,}" if isinstance(steps, (int, float)) else "         -"
        self._print(
            f"{self._prefix(rec)}iter {result.get('training_iteration', 0):>4} | "
            f"env steps {steps_text} | {rate} steps/s | "
            f"{_fmt_returns(_returns(result))} | {_fmt_duration(result.get('time_total_s'))}"
        )
        if not self._stop_keys_checked:
            self._stop_keys_checked = True
            self._warn_unknown_stop_keys(result)

    def _warn_unknown_stop_keys(self, result: Dict[str, Any]) -> None:
        flat = _flatten(result)
        for key in self.stop:
            if key not in flat:
                self._print(
                    f"rllib: warning: stop criterion {key!r} is not in the results, so it "
                    f"never stops a trial.{_did_you_mean(key, flat)}",
                    err=True,
                )

    def on_checkpoint(self, trial, checkpoint) -> None:
        rec = self.record(trial)
        rec.checkpoint = getattr(checkpoint, "path", None) or str(checkpoint)
        self._print(f"{self._prefix(rec)}checkpoint saved: {rec.checkpoint}")

    def on_complete(self, trial) -> None:
        rec = self.record(trial)
        rec.status = "TERMINATED"
        flat = _flatten(rec.last_result)
        reached = [
            f"{key} >= {value:g}" for key, value in self.stop.items()
            if isinstance(flat.get(key), (int, float)) and flat[key] >= value
        ]
        rec.reason = (
            f"stop criterion reached ({', '.join(reached)})" if reached
            else "finished (the trainable reported done)"
        )
        self._print(f"{self._prefix(rec)}done: {rec.reason}")

    def on_error(self, trial) -> None:
        rec = self.record(trial)
        rec.status = "ERROR"
        local = getattr(trial, "error_file", None)
        name = os.path.basename(local) if local else "error.txt"
        rec.error_file = os.path.join(rec.path, name) if rec.path else local
        last_line = ""
        if local and os.path.exists(local):
            with open(local, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
            last_line = lines[-1] if lines else ""
        rec.reason = f"ERROR: {last_line}" if last_line else "ERROR"
        self._print(
            f"{self._prefix(rec)}trial failed: {last_line or 'see the error file'}\n"
            f"  error file: {rec.error_file}",
            err=True,
        )

    def any_error(self) -> bool:
        return any(rec.status == "ERROR" for rec in self.trials.values())

    def any_interrupted(self) -> bool:
        return any(rec.status == "RUNNING" for rec in self.trials.values())

    def print_summary(self, name: str, run_dir: str, seconds: float) -> None:
        self._print(f"== {name}: summary ({_fmt_duration(seconds)}; results in {run_dir})")
        if not self.trials:
            self._print("   no trial reported a result")
        for rec in self.trials.values():
            result = rec.last_result
            steps = result.get("num_env_steps_sampled_lifetime") or 0
            iterations = result.get("training_iteration", 0)
            status = {"ERROR": rec.reason, "RUNNING": "INTERRUPTED"}.get(rec.status, rec.status)
            self._print(
                f"   {rec.label}: {status}, {iterations} iteration{'s' * (iterations != 1)}, "
                f"{steps:,} env steps, {_fmt_returns(_returns(result))}"
            )
            if rec.checkpoint:
                self._print(f"      last checkpoint: {rec.checkpoint}")
            elif rec.status == "RUNNING":
                self._print("      no checkpoint yet (--checkpoint-freq N saves one every N iterations)")
            if rec.error_file:
                self._print(f"      error file: {rec.error_file}")


def _tune_callback(progress: Progress):
    """A ray.tune.Callback that forwards Tune's events to `progress`."""
    from ray import tune

    class ProgressCallback(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            progress.on_start(trial)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            progress.on_result(trial, result)

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            progress.on_checkpoint(trial, checkpoint)

        def on_trial_complete(self, iteration, trials, trial, **info):
            progress.on_complete(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            progress.on_error(trial)

    return ProgressCallback()


# ----------------------------------------------------------------------------
# rllib evaluate
# ----------------------------------------------------------------------------


def find_checkpoint(path: str) -> str:
    """A checkpoint directory from a checkpoint or trial directory path."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise UsageError(f"checkpoint not found: {path}")
    if not os.path.isdir(path):
        raise UsageError(f"{path} is not a checkpoint directory (checkpoint_NNNNNN/)")
    if os.path.exists(os.path.join(path, "rllib_checkpoint.json")):
        return path
    # A trial directory, or an experiment / storage directory holding one trial.
    by_trial: Dict[str, List[str]] = {}
    for pattern in ("checkpoint_*", "*/checkpoint_*", "*/*/checkpoint_*"):
        for ckpt in glob.glob(os.path.join(glob.escape(path), pattern)):
            if os.path.exists(os.path.join(ckpt, "rllib_checkpoint.json")):
                by_trial.setdefault(os.path.dirname(ckpt), []).append(ckpt)
        if by_trial:
            break
    if len(by_trial) == 1:
        chosen = max(next(iter(by_trial.values())))
        print(f"using the latest checkpoint below {path}: {chosen}")
        return chosen
    latest = sorted(max(ckpts) for ckpts in by_trial.values())
    hint = (
        f" It holds {len(latest)} trials; pick one: {', '.join(latest[:5])}"
        f"{' ...' if len(latest) > 5 else ''}" if latest else ""
    )
    raise UsageError(
        f"{path} is not an RLlib checkpoint (no rllib_checkpoint.json) nor a trial "
        f"directory with checkpoint_* sub-directories.{hint}"
    )


def load_policies(checkpoint: str) -> Dict[str, Any]:
    """The policies of an Algorithm checkpoint, each restored on its own (no Ray)."""
    try:
        with open(os.path.join(checkpoint, "rllib_checkpoint.json"), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {checkpoint}/rllib_checkpoint.json: {e}") from e
    if info.get("type") != "Algorithm":
        raise UsageError(
            f"{checkpoint} is a {info.get('type')!r} checkpoint; give an Algorithm "
            "checkpoint (a checkpoint_NNNNNN directory written by `rllib train`)"
        )
    policies_dir = os.path.join(checkpoint, "policies")
    if not os.path.isdir(policies_dir):
        raise UsageError(f"{checkpoint} has no policies/ directory (old-API-stack checkpoints have one)")

    import rllib_maddpg  # noqa: F401  (registers the envs; policy classes unpickle from it)
    from ray.rllib.policy.policy import Policy

    policies = {}
    for policy_id in sorted(os.listdir(policies_dir)):
        try:
            policies[policy_id] = Policy.from_checkpoint(os.path.join(policies_dir, policy_id))
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"cannot restore policy {policy_id!r} from {policies_dir}: {e}") from e
    if not policies:
        raise UsageError(f"{policies_dir} holds no policies")
    return policies


def _agent_to_policy(config: Dict[str, Any], agent_ids: Sequence, policies: Dict[str, Any]) -> Dict:
    """agent -> policy id: MADDPG's joint agent order, else the saved policy_mapping_fn."""
    agents = config.get("_maddpg_agents")
    if agents:
        mapping = {spec.agent_id: spec.policy_id for spec in agents}
    else:
        fn = config.get("policy_mapping_fn")
        mapping = {}
        for agent_id in agent_ids:
            try:
                mapping[agent_id] = fn(agent_id, None, worker=None) if fn else str(agent_id)
            except Exception:  # noqa: BLE001
                mapping[agent_id] = str(agent_id)
    missing = {a: p for a, p in mapping.items() if p not in policies}
    if missing:
        raise UsageError(f"the checkpoint has no policy for agent(s) {missing}; it has {sorted(policies)}")
    return mapping


def make_env(config: Dict[str, Any], render: bool):
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.env_context import EnvContext

    env_spec = config.get("env")
    env_config = dict(config.get("env_config") or {})
    if render:
        env_config["render_mode"] = "rgb_array"
    try:
        _, creator = Algorithm._get_env_id_and_creator(env_spec, config)
        return creator(EnvContext(env_config, worker_index=0, num_workers=0))
    except Exception as e:  # noqa: BLE001
        extra = " with render_mode='rgb_array' (does its env_config accept it?)" if render else ""
        raise UsageError(f"cannot build the checkpoint's env {env_spec!r}{extra}: {e}") from e


def _print_task_metrics(task_metrics: Dict[str, List[float]], env_name) -> None:
    """The paper's per-scenario metrics (rllib_maddpg/envs/mpe_metrics.py), averaged."""
    import numpy as np

    if not task_metrics:
        print(f"  no task metrics for env {env_name!r} (the paper's metrics cover six MPE scenarios)")
        return
    print("  task metrics (mean over episodes; see rllib_maddpg/envs/mpe_metrics.py):")
    for name, values in task_metrics.items():
        mean = float(np.mean(values))
        shown = f"{100 * mean:.1f}%" if name.endswith(("_success", "_reached")) else f"{mean:.3f}"
        print(f"    {name:<26} {shown}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.fps <= 0:
        raise UsageError(f"--fps must be > 0, got {args.fps}")
    if args.render:
        out_dir = os.path.dirname(os.path.abspath(args.render)) or "."
        if not os.path.isdir(out_dir):
            raise UsageError(f"--render: directory {out_dir} does not exist")
        if os.path.exists(args.render):
            raise UsageError(f"--render: {args.render} exists; give a new file name (nothing is overwritten)")
        _pillow()  # fail before the episodes, not after
    checkpoint = find_checkpoint(args.checkpoint)
    policies = load_policies(checkpoint)
    config = next(iter(policies.values())).config

    import numpy as np

    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
    env = make_env(config, render=bool(args.render))
    from rllib_maddpg.envs import env_agent_ids

    agent_ids = env_agent_ids(env)
    mapping = _agent_to_policy(config, agent_ids, policies)
    print(
        f"evaluating {checkpoint}\n  env {config.get('env')!r}, {len(agent_ids)} agents, "
        f"{args.episodes} episodes, explore={args.explore}, seed={args.seed}",
        flush=True,
    )

    from rllib_maddpg.evaluation import run_episodes

    ensembles = {pid: p.num_subpolicies for pid, p in policies.items()
                 if getattr(p, "num_subpolicies", 1) > 1}
    if args.subpolicy is not None and any(args.subpolicy >= k for k in ensembles.values()):
        raise UsageError(f"--subpolicy {args.subpolicy}: the ensembles have {ensembles} sub-policies")
    try:
        result = run_episodes(
            policies, mapping, env, args.episodes, explore=args.explore, seed=args.seed,
            subpolicy=args.subpolicy, record_first=bool(args.render),
        )
    finally:
        env.close()
    returns, lengths, task_metrics, frames = (
        result.returns, result.lengths, result.task_metrics, result.frames
    )

    team = returns.sum(axis=1)
    width = max(len("team (sum)"), *(len(str(a)) for a in agent_ids))
    pwidth = max(len("policy"), *(len(str(p)) for p in mapping.values()))
    print(f"  mean episode length {np.mean(lengths):.1f}")
    print(f"  {'agent':<{width}}  {'policy':<{pwidth}}  {'mean':>9}  {'std':>8}  {'min':>9}  {'max':>9}")
    rows = [(str(a), str(mapping[a]), returns[:, k]) for k, a in enumerate(agent_ids)]
    rows.append(("team (sum)", "", team))
    for agent, policy_id, values in rows:
        print(
            f"  {agent:<{width}}  {policy_id:<{pwidth}}  {values.mean():9.3f}  "
            f"{values.std():8.3f}  {values.min():9.3f}  {values.max():9.3f}"
        )

    if args.metrics:
        _print_task_metrics(task_metrics, config.get("env"))

    if args.render:
        frames = [f for f in frames if f is not None]
        if not frames:
            raise UsageError("--render: the env's render() returned no frames")
        size = write_gif(args.render, frames, fps=args.fps)
        print(f"  wrote {args.render}: {len(frames)} frames, {size / 1e3:.0f} kB (first episode)")
    return EXIT_OK


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(
            "--render writes GIFs with Pillow, which is not installed: "
            "pip install 'rllib-maddpg[render]' (or pip install pillow)"
        ) from None
    return Image


def write_gif(path: str, frames, fps: float) -> int:
    """An animated GIF of RGB(A) frames at full resolution, each with its own
    adaptive palette, LZW-compressed by Pillow; returns the file's size."""
    Image = _pillow()
    images = [Image.fromarray(frame[..., :3]).quantize(colors=256) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                   loop=0, optimize=True)
    return os.path.getsize(path)


if __name__ == "__main__":
    sys.exit(main())
