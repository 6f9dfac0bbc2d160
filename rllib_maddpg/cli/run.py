"""`rllib train`: each experiment of the file as one ray.tune.Tuner run, or a Tuner.restore of it.

What Tune does not do is here: a new run never reuses a directory, one process
at a time writes a run (a file lock), and a resumed run first moves aside the
checkpoints Tune never recorded, which its trials would otherwise overwrite.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import re
import time

import ray
from ray import tune

from rllib_maddpg.cli.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from rllib_maddpg.cli.experiments import ExperimentSpec, load_experiment_file, parse_json_flag, prepare_experiment
from rllib_maddpg.cli.progress import TERMINATED, ProgressCallback, report, result_label, trial_status
from rllib_maddpg.interrupt import CheckpointOnInterrupt, checkpoint_on_interrupt

RUN_LOCK_FILE = ".rllib_train.lock"
_CHECKPOINT_DIR = re.compile(r"checkpoint_\d{6}$")


def cmd_train(args) -> int:
    path = _check_train_args(args)
    stop, config = parse_json_flag("--stop", args.stop), parse_json_flag("--config", args.config)
    specs = [prepare_experiment(name, raw, stop, config, args) for name, raw in load_experiment_file(path).items()]
    with contextlib.ExitStack() as locks:  # held until the command ends; the OS drops them if it dies
        runs = [(spec, None, None) for spec in specs]  # (spec, run directory, Tuner): new runs
        if args.resume is not None:
            run_dirs = [find_resume_dir(spec, args.resume, len(specs)) for spec in specs]
            for run_dir in filter(_is_local, run_dirs):
                locks.enter_context(lock_run_dir(run_dir))
            runs = [(spec, run_dir, restore_run(spec, run_dir)) for spec, run_dir in zip(specs, run_dirs)]
            runs = [run for run in runs if run[2] is not None]
        return _train(runs, args, locks) if runs else EXIT_OK


def _check_train_args(args) -> str:
    words = args.words[1:] if args.words[:1] == ["file"] else args.words
    if len(words) + bool(args.config_file) != 1:
        raise UsageError("give one YAML file: `rllib train file X.yaml` or `rllib train -f X.yaml`")
    fixed = [f"--{dest.replace('_', '-')}" for dest in ("stop", "config", "checkpoint_freq", "checkpoint_at_end")
             if getattr(args, dest) is not None]
    if args.resume is not None and fixed:
        raise UsageError(f"--resume continues a run with the config, stop criteria and checkpoint settings it "
                         f"started with; drop {', '.join(fixed)} (or start a new run without --resume)")
    return args.config_file or words[0]


def _is_local(path: str) -> bool:
    return "://" not in path


def _train(runs, args, locks: contextlib.ExitStack) -> int:
    """Starts Ray, then fits each run in turn; the worst exit code wins, Ctrl-C stops all."""
    if all(_is_local(spec.storage_path) for spec, _, _ in runs):
        # Tune records the run (what --resume restarts from) every >= 10 s by default; local files are cheap.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    if args.verbose < 1:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the progress lines replace Tune's tables
    # -vv: Tune's debug logs; quiet: not even a failed trial's traceback (its error file is named).
    logging.getLogger("ray.tune").setLevel({0: logging.CRITICAL, 1: logging.INFO}.get(args.verbose, logging.DEBUG))
    location = {"address": args.ray_address} if args.ray_address else {"num_cpus": args.ray_num_cpus}
    with ray.init(include_dashboard=False, log_to_driver=args.verbose >= 1,
                  logging_level=logging.INFO if args.verbose else logging.WARNING, **location):
        if not args.ray_address:
            for spec, _, _ in runs:
                _check_resources(spec, ray.cluster_resources().get("CPU", 0))
        exit_code = EXIT_OK
        for spec, run_dir, tuner in runs:
            if tuner is None:
                run_dir, tuner = new_run(spec, args.verbose, locks)
            start = time.time()
            with checkpoint_on_interrupt():  # the first SIGINT/SIGTERM checkpoints the running trials
                results = tuner.fit()
            code = report(spec.name, run_dir, time.time() - start, results)
            if code == EXIT_INTERRUPTED:
                return code  # Ctrl-C (Tune stops the trials and fit() returns): start nothing more
            exit_code = max(exit_code, code)
        return exit_code


def _check_resources(spec: ExperimentSpec, have: float) -> None:
    """Refuses a trial that can never start on this local Ray (Tune would wait forever)."""
    try:  # with a config dict, as Tune calls it
        need = spec.trainable.default_resource_request(copy.deepcopy(spec.variants[0])).required_resources["CPU"]
    except Exception:  # best effort: not every trainable says
        return
    if need > have:
        raise UsageError(f"experiment {spec.name!r}: one trial needs {need:g} CPUs but this Ray has {have:g}; "
                         "lower config.num_env_runners (each takes a CPU) or raise --ray-num-cpus")


def new_run(spec: ExperimentSpec, verbose: int, locks: contextlib.ExitStack):
    """(run directory, Tuner) of a new run of `spec`, in a directory no run has used."""
    run_name = _new_run_name(spec.storage_path, spec.name)
    run_dir = os.path.join(spec.storage_path, run_name)
    if _is_local(run_dir):
        locks.enter_context(lock_run_dir(run_dir))  # a --resume of this run is refused until it ends
    stop_text = ", ".join(f"{k} >= {v:g}" for k, v in spec.stop.items()) or "none (Ctrl-C stops)"
    print(f"== {spec.name}: {spec.run} on {spec.config['env']}, {spec.num_trials} "
          f"trial{'s' * (spec.num_trials != 1)}, stop: {stop_text}")
    if run_name != spec.name:
        print(f"   {os.path.join(spec.storage_path, spec.name)} exists; not touching it.")
    print(f"   results: {run_dir}", flush=True)
    callbacks = [ProgressCallback(spec.stop, several_trials=spec.num_trials > 1), *spec.callbacks]
    return run_dir, tune.Tuner(
        spec.trainable, param_space=spec.config,
        tune_config=tune.TuneConfig(num_samples=spec.num_samples, scheduler=CheckpointOnInterrupt()),
        run_config=tune.RunConfig(name=run_name, stop=spec.stop or None, storage_path=spec.storage_path,
                                  checkpoint_config=spec.checkpoint_config, verbose=min(verbose, 2),
                                  callbacks=callbacks))


def _new_run_name(storage_path: str, name: str) -> str:
    """`name`, or `<name>_<date>_<time>` if that exists: Tune would mix new trials into it."""
    if not _is_local(storage_path) or not os.path.exists(os.path.join(storage_path, name)):
        return name
    return os.path.basename(_unused(os.path.join(storage_path, f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}")))


def _unused(path: str) -> str:
    """`path`, else the first of `path_2`, `path_3`, ... that does not exist."""
    candidate, k = path, 1
    while os.path.exists(candidate):
        k += 1
        candidate = f"{path}_{k}"
    return candidate


def lock_run_dir(run_dir: str):
    """Takes the run's lock (an flock, which the OS drops however the holder dies) or refuses:
    one `rllib train` at a time writes a run, its first run or a --resume of it."""
    os.makedirs(run_dir, exist_ok=True)
    lock = open(os.path.join(run_dir, RUN_LOCK_FILE), "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise UsageError(f"{run_dir} is being written by another `rllib train` (pid {holder}), which started "
                         "or resumed it: wait for it to end, or stop it, then run --resume again") from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


# ----------------------------------------------------------------------------- --resume


def find_resume_dir(spec: ExperimentSpec, resume, num_experiments: int) -> str:
    """The directory `--resume` continues: PATH, or (resume is True) the newest run of the
    experiment, STORAGE_PATH/<name> or one of its <name>_<date>_<time> (_new_run_name)."""
    if resume is not True:
        path = os.path.abspath(os.path.expanduser(resume))
        if num_experiments > 1:
            raise UsageError(f"--resume {resume} names one experiment directory, but the file has {num_experiments} "
                             "experiments; give --resume without PATH to resume the newest run of each")
        if not tune.Tuner.can_restore(path):
            raise UsageError(f"--resume {resume}: {path} is not a Tune experiment directory; give "
                             "STORAGE_PATH/<experiment name> as printed by `rllib train` (\"results: ...\")")
        return path
    storage, name = spec.storage_path, spec.name
    if not _is_local(storage):  # remote storage: no listing here, Tune checks it
        return f"{storage.rstrip('/')}/{name}"
    own = re.compile(re.escape(name) + r"(_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?)?$")
    runs = [os.path.join(storage, d) for d in (os.listdir(storage) if os.path.isdir(storage) else [])
            if own.match(d) and tune.Tuner.can_restore(os.path.join(storage, d))]
    if not runs:
        raise UsageError(f"experiment {name!r}: nothing to resume, no run under {storage} ({name}/ or "
                         f"{name}_<date>_<time>/ with a Tune experiment state); start it without --resume")
    # The newest: the run whose own files (Tune's records of it) changed last.
    return max(runs, key=lambda run: max(e.stat().st_mtime for e in os.scandir(run) if e.is_file()))


def recorded_results(run_dir: str, trainable):
    """(a Tuner that continues the run, its trials as Tune last recorded them)."""
    try:
        tuner = tune.Tuner.restore(run_dir, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True, restart_errored=False)
    except (ValueError, AttributeError, ImportError) as e:  # another trainable, or code that is gone
        raise UsageError(f"cannot resume {run_dir}: {type(e).__name__}: {e}") from e
    try:
        return tuner, list(tuner.get_results())
    except RuntimeError:  # no experiment state recorded yet: the trials start from scratch
        return tuner, []


def restore_run(spec: ExperimentSpec, run_dir: str):
    """Prints what --resume will do, sets aside unrecorded checkpoints and returns the
    restored Tuner (None if every trial had finished). Its config, stop criteria,
    checkpoint settings and callbacks (the progress printer too) are the run's own."""
    tuner, results = recorded_results(run_dir, spec.trainable)
    to_resume = [result for result in results if trial_status(result) != TERMINATED]
    print(f"== {spec.name}: resuming {run_dir}")
    if results and not to_resume:
        print(f"   nothing to resume: all {len(results)} trials finished")
        return None
    if len(results) > len(to_resume):
        print(f"   {len(results) - len(to_resume)} finished trial(s) stay as they are")
    for result in to_resume:
        recorded = result.checkpoint.path if result.checkpoint else None
        start = f"from {os.path.basename(recorded)}" if recorded else "from scratch (no checkpoint recorded)"
        print(f"   {result_label(result)}{' (errored)' * (result.error is not None)}: restarts {start}")
        if _is_local(run_dir):
            set_aside_unrecorded_checkpoints(result.path, recorded)
    return tuner


def set_aside_unrecorded_checkpoints(trial_dir: str, recorded: str | None) -> None:
    """Renames the checkpoints after the recorded latest one to unrecorded_checkpoint_NNNNNN: a trial
    writes a checkpoint before the driver records it, and a resumed trial would overwrite it."""
    for entry in sorted(os.listdir(trial_dir)) if os.path.isdir(trial_dir) else []:
        if _CHECKPOINT_DIR.match(entry) and (recorded is None or entry > os.path.basename(recorded)):
            new = _unused(os.path.join(trial_dir, f"unrecorded_{entry}"))
            os.rename(os.path.join(trial_dir, entry), new)
            print(f"      {entry} was written after Tune's last record of the run; moved aside "
                  f"to {os.path.basename(new)}")
