"""The `rllib` command: train from an (old-format) RLlib YAML file, evaluate a checkpoint.

Ray 2.60 ships no `rllib` command; this one does what the old `rllib train
file` / `rllib evaluate` did, for MADDPG and any trainable registered with Tune.
Modules: experiments (the YAML file, checked before Ray starts), run (Tune's
Tuner and Tuner.restore), progress (the output), evaluate.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Sequence

from rllib_maddpg.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TRIAL_ERROR, EXIT_USAGE, UsageError
from rllib_maddpg.cli.evaluate import cmd_evaluate
from rllib_maddpg.cli.experiments import flatten_stop, load_experiment_file, prepare_experiment
from rllib_maddpg.cli.run import cmd_train

__all__ = ["main", "build_parser", "flatten_stop", "load_experiment_file", "prepare_experiment", "UsageError"]

_TRAIN_EPILOG = """\
YAML format (the old RLlib one; one or more experiments):

  my_experiment:                  # the results directory: STORAGE_PATH/my_experiment
    run: MADDPG                   # a trainable registered with Tune
    env: mpe/simple_spread        # or config.env
    stop: {training_iteration: 100, num_env_steps_sampled_lifetime: 1000000}
    config: {actor_lr: 0.01, tau: {grid_search: [0.01, 0.05]}}
    checkpoint_config: {checkpoint_frequency: 10, checkpoint_at_end: true, num_to_keep: 3}
    storage_path: ~/ray_results   # optional, like the three below
    num_samples: 1
    wandb: {project: my-project}  # Tune's WandbLoggerCallback (the `tracking` extra)
    mlflow: {tracking_uri: file:///tmp/mlruns}  # Tune's MLflowLoggerCallback

A new run never reuses a results directory (it takes <name>_<date>_<time>);
`--resume` continues a run in its own directory through Tune's Tuner.restore.
The first Ctrl-C (SIGINT) or SIGTERM checkpoints each running trial at the end
of its current iteration, then stops (rllib_maddpg/interrupt.py); a second
stops at once. Exit code: 0 ok, 1 a trial errored, 2 bad input, 130 interrupted. README.md
("Set up, train, test" and "Fault tolerance") tells more.
"""


def _at_least(low: float, kind=int, exclusive: bool = False):
    """An argparse type: a `kind` number >= low (> low if exclusive)."""
    def parse(text: str):
        value = kind(text)  # a ValueError is argparse's "invalid int value"
        if value < low or (exclusive and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if exclusive else '>='} {low}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rllib", epilog="`rllib train --help` and `rllib evaluate --help` tell more.",
        description="Train RLlib algorithms (MADDPG and others registered with Tune) from YAML "
        "files and evaluate their checkpoints. Old API stack; Ray 2.60.")
    commands = parser.add_subparsers(dest="command", metavar="{train,evaluate}", required=True)

    train = commands.add_parser("train", help="train the experiments of a YAML file, one Tune run each",
                                usage="rllib train file X.yaml [options]  (or: rllib train -f X.yaml)",
                                epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = train.add_argument
    add("words", nargs="*", metavar="file X.yaml", help="the YAML experiment file.")
    add("-f", "--config-file", metavar="X.yaml", help="the YAML experiment file.")
    add("--stop", metavar="JSON", help="stop criteria, merged over the file's `stop`, "
        "e.g. '{\"training_iteration\": 10}'.")
    add("--config", metavar="JSON", help="config, deep-merged over the file's `config`, "
        "e.g. '{\"actor_lr\": 0.001, \"env_config\": {\"N\": 4}}'.")
    add("--storage-path", metavar="PATH", help="where results go (default: the file's storage_path or ~/ray_results).")
    add("--checkpoint-freq", metavar="N", type=_at_least(0), help="save a checkpoint every N iterations (0: never).")
    add("--checkpoint-at-end", action=argparse.BooleanOptionalAction, help="checkpoint a trial's end (default: on).")
    add("--wandb-project", metavar="NAME", help="also log to this Weights & Biases project.")
    add("--mlflow-tracking-uri", metavar="URI", help="also log to MLflow at this URI, e.g. file:///tmp/mlruns.")
    either = train.add_mutually_exclusive_group().add_argument
    either("--ray-address", metavar="ADDR", help="use this running Ray cluster ('auto', HOST:6379).")
    either("--ray-num-cpus", metavar="N", type=_at_least(1), help="CPUs of the local Ray of this run (default: all).")
    add("--resume", metavar="PATH", nargs="?", const=True, help="continue the newest run of each experiment "
        "(PATH: that experiment directory); give it after the YAML file.")
    add("-v", "--verbose", action="count", default=0, help="-v: Tune's status tables, Ray's worker logs, "
        "library warnings and tracebacks; -vv: also Tune's debug logs.")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="run a checkpoint's policies for N episodes",
        description="Run a checkpoint's policies for N episodes, each agent on its own observation "
        "(decentralized execution), without Ray, and print the mean (std, min, max) episode return "
        "of each agent and of the team.")
    add = evaluate.add_argument
    add("checkpoint", metavar="CHECKPOINT", help="a checkpoint_NNNNNN directory, or a trial directory "
        "(its latest checkpoint).")
    add("--episodes", type=_at_least(1), default=10, metavar="N", help="episodes to run (default 10).")
    add("--subpolicy", type=_at_least(0), metavar="K", help="policy ensembles: act with sub-policy K "
        "(default: one drawn per agent per episode).")
    add("--metrics", action="store_true", help="also print the scenario's task metrics (envs/mpe_metrics.py).")
    add("--render", metavar="OUT.gif", help="record the first episode as an animated GIF (Pillow).")
    add("--fps", type=_at_least(0, float, exclusive=True), default=10.0, help="GIF frames per second (default 10).")
    add("--seed", type=int, help="seed of the env (episode k: SEED + k) and of the exploration noise.")
    add("--explore", action="store_true", help="act with exploration noise (default: deterministic).")
    add("-v", "--verbose", action="count", default=0, help="show tracebacks and library warnings.")
    evaluate.set_defaults(handler=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _quiet_libraries(args.verbose):
            return args.handler(args)
    except UsageError as e:
        if args.verbose and e.__cause__ is not None:
            traceback.print_exception(e.__cause__)
        print(f"rllib: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rllib: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `rllib evaluate ... | head`
        return EXIT_OK
    except Exception as e:  # the last resort: one line, the traceback with -v
        if args.verbose:
            traceback.print_exc()
        else:
            print("(run with -v for the traceback)", file=sys.stderr)
        print(f"rllib: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_TRIAL_ERROR


@contextlib.contextmanager
def _quiet_libraries(verbose: int):
    """Keeps RLlib's and Tune's log noise (e.g. a "no prior exploration config"
    warning per policy build) off the output while the command runs; -v shows it."""
    loggers = [logging.getLogger(name) for name in ("ray.rllib", "ray.tune", "ray.train")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logger.level if verbose else logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
