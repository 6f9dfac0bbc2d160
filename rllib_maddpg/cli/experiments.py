"""The YAML experiment file (the old RLlib format), checked before Ray starts.

Bad input is one clear `rllib: error:` line here, not a traceback from a
trial minutes later: unknown keys, values of the wrong kind, and every grid
variant's config through the algorithm's own `validate()`.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import warnings
from typing import Any

import gymnasium as gym
import yaml
from ray import tune
from ray.rllib.algorithms.registry import ALGORITHMS
from ray.train.constants import DEFAULT_STORAGE_PATH
from ray.tune.error import TuneError
from ray.tune.registry import get_trainable_cls
from ray.tune.search.variant_generator import format_vars, generate_variants
from ray.tune.utils import flatten_dict

from rllib_maddpg.cli.errors import UsageError, did_you_mean
from rllib_maddpg.envs import MPE_SCENARIOS

# The keys of one experiment (`rllib train --help` shows them): the type of each, and what it must be.
EXPERIMENT_KEYS = {
    "run": (str, "a trainable registered with Tune, e.g. `run: MADDPG`"),
    "env": (str, "an env name, e.g. `env: mpe/simple_spread`"),
    "stop": (dict, "a mapping of stop criteria"),
    "config": (dict, "a mapping of the algorithm's config"),
    "checkpoint_config": (dict, "a mapping of ray.tune.CheckpointConfig arguments"),
    "storage_path": (str, "a path"),
    "num_samples": (int, "an integer >= 1"),
    "wandb": (dict, "a mapping of WandbLoggerCallback arguments"),
    "mlflow": (dict, "a mapping of MLflowLoggerCallback arguments"),
}
MPE_ENVS = [f"mpe/{scenario}" for scenario in MPE_SCENARIOS]


@dataclasses.dataclass
class ExperimentSpec:
    """One checked experiment, ready for ray.tune.Tuner."""

    name: str
    run: str
    trainable: Any
    config: dict[str, Any]  # may hold {grid_search: [...]} values; Tune expands them
    stop: dict[str, Any]  # flat `a/b` keys
    checkpoint_config: tune.CheckpointConfig
    storage_path: str
    num_samples: int
    variants: list[dict[str, Any]]  # the config of each grid point
    callbacks: list[Any]  # Tune's W&B / MLflow logger callbacks

    @property
    def num_trials(self) -> int:
        return self.num_samples * len(self.variants)


def parse_json_flag(flag: str, text: str | None) -> dict[str, Any]:
    try:
        value = {} if text is None else json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag} is not valid JSON ({e.msg} at column {e.colno}): {text!r}. Quote "
                         f"it for the shell, e.g. {flag} '{{\"training_iteration\": 10}}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object ({{...}}), got {text!r}")
    return value


def load_experiment_file(path: str) -> dict[str, dict[str, Any]]:
    """Reads the YAML file: {experiment name: {run, env, stop, config, ...}}."""
    if not os.path.isfile(path):
        raise UsageError(f"experiment file not found: {path}" if not os.path.exists(path)
                         else f"{path} is a directory, not a YAML experiment file")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)  # PyYAML's own text spans several lines
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"{path} is not valid YAML: {getattr(e, 'problem', None) or e}{where}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path} must map experiment names to experiments, e.g. `my_experiment: "
                         "{run: MADDPG, env: mpe/simple_spread, stop: ...}`; found "
                         f"{'nothing' if data is None else type(data).__name__}")
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise UsageError(f"experiment {name!r} in {path} must be a mapping with keys "
                             f"{', '.join(EXPERIMENT_KEYS)}, got {type(raw).__name__}")
        if str(name) in ("", ".", "..") or "/" in str(name) or "\\" in str(name):
            raise UsageError(f"experiment name {name!r} cannot be a directory name; rename it")
    return {str(name): raw for name, raw in data.items()}


def prepare_experiment(name: str, raw: dict[str, Any], stop_override: dict[str, Any],
                       config_override: dict[str, Any], args) -> ExperimentSpec:
    """Checks one experiment of the file and applies the command-line flags."""
    where = f"experiment {name!r}"
    check_keys(where, raw, EXPERIMENT_KEYS)
    for key, value in raw.items():
        kind, what = EXPERIMENT_KEYS[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise UsageError(f"{where}: `{key}` must be {what}, got {value!r}")
    if not raw.get("run"):
        raise UsageError(f"{where}: `run` is missing; set it to a trainable, e.g. `run: MADDPG`")
    trainable = resolve_trainable(raw["run"], where)

    config = _deep_merge(raw.get("config") or {}, config_override)
    if raw.get("env") and config.get("env") not in (None, raw["env"]):
        raise UsageError(f"{where}: the env is given twice, as env: {raw['env']!r} and config.env: "
                         f"{config['env']!r}; keep one")
    config["env"] = raw.get("env") or config.get("env")
    check_env(config["env"], where)

    storage_path = getattr(args, "storage_path", None) or raw.get("storage_path") or DEFAULT_STORAGE_PATH
    if "://" not in storage_path:
        storage_path = os.path.abspath(os.path.expanduser(storage_path))
        if os.path.exists(storage_path) and not os.path.isdir(storage_path):
            raise UsageError(f"{where}: storage_path {storage_path} exists and is not a directory")
    num_samples = raw.get("num_samples", 1)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise UsageError(f"{where}: `num_samples` must be an integer >= 1, got {num_samples!r}")
    return ExperimentSpec(
        name=name, run=raw["run"], trainable=trainable, config=config,
        stop={**flatten_stop(raw.get("stop") or {}, where), **flatten_stop(stop_override, "--stop")},
        checkpoint_config=_checkpoint_config(raw, args, where), storage_path=storage_path,
        num_samples=num_samples, variants=validate_variants(trainable, config, where),
        callbacks=_tracking_callbacks(raw, args, name, where),
    )


def check_keys(what: str, given: dict[str, Any], allowed, noun: str = "key") -> None:
    """Refuses the keys of `given` that are not `allowed`, naming the closest allowed one."""
    unknown = [key for key in given if key not in allowed]
    if unknown:
        raise UsageError(f"{what} has unknown {noun}(s) {unknown}.{did_you_mean(unknown[0], allowed)} "
                         f"Allowed: {', '.join(allowed)}")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "grid_search" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten_stop(stop: dict[str, Any], where: str) -> dict[str, Any]:
    """Stop criteria with Tune's flat `a/b` keys (as in its results), each a number."""
    flat = flatten_dict(stop, delimiter="/")
    for key, value in flat.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: stop criterion {key!r} must be a number (a trial stops "
                             f"when result[{key!r}] >= it), got {value!r}")
    return flat


def _checkpoint_config(raw: dict[str, Any], args, where: str) -> tune.CheckpointConfig:
    cfg = raw.get("checkpoint_config") or {}
    check_keys(f"{where}: checkpoint_config", cfg,
               [f.name for f in dataclasses.fields(tune.CheckpointConfig) if not f.name.startswith("_")])
    flags = {"checkpoint_frequency": getattr(args, "checkpoint_freq", None),
             "checkpoint_at_end": getattr(args, "checkpoint_at_end", None)}
    cfg = {"checkpoint_at_end": True,  # never lose the trained policies
           **cfg, **{k: v for k, v in flags.items() if v is not None}}
    try:
        return tune.CheckpointConfig(**cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{where}: invalid checkpoint_config {cfg}: {e}") from e


def _tracking_callbacks(raw: dict[str, Any], args, name: str, where: str) -> list[Any]:
    """Tune's own logger callbacks, from the `wandb:`/`mlflow:` mappings and the flags."""
    kwargs = {key: dict(raw[key]) for key in ("wandb", "mlflow") if raw.get(key) is not None}
    if getattr(args, "wandb_project", None):
        kwargs.setdefault("wandb", {})["project"] = args.wandb_project
    if getattr(args, "mlflow_tracking_uri", None):
        kwargs.setdefault("mlflow", {})["tracking_uri"] = args.mlflow_tracking_uri
    if not kwargs:
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback  # only here: importing wandb takes seconds
    from ray.air.integrations.wandb import WandbLoggerCallback

    classes = {"wandb": WandbLoggerCallback, "mlflow": MLflowLoggerCallback}
    kwargs.get("mlflow", {}).setdefault("experiment_name", name)
    callbacks = []
    for key, arguments in kwargs.items():
        params = inspect.signature(classes[key]).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):  # W&B passes the rest to wandb.init
            check_keys(f"{where}: `{key}`", arguments, list(params), noun="argument")
        try:
            callbacks.append(classes[key](**arguments))
        except (ImportError, RuntimeError):  # Tune's own "wandb/mlflow is not installed"
            raise UsageError(f"{where}: `{key}` tracking needs the {key} package: "
                             "pip install 'rllib-maddpg[tracking]'") from None
    return callbacks


def resolve_trainable(run: str, where: str):
    """The trainable class for `run`: registered with Tune, or one of RLlib's algorithms."""
    try:
        with warnings.catch_warnings():
            # On a miss RLlib registers all its algorithms, and gymnasium warns about their envs.
            warnings.filterwarnings("ignore", category=UserWarning, module="gymnasium")
            return get_trainable_cls(run)
    except TuneError:
        known = ["MADDPG", "GeneticMADDPG", *ALGORITHMS]
        raise UsageError(f"{where}: run: {run!r} is not a registered trainable."
                         f"{did_you_mean(run, known)} Known: {', '.join(known)}") from None
    except ImportError as e:
        raise UsageError(f"{where}: cannot import the trainable {run!r}: {e}") from e


def check_env(env: Any, where: str) -> None:
    """A friendlier error than RLlib's for a missing env or an env name that nothing defines:
    the CLI knows rllib_maddpg's envs (mpe/<scenario>), class paths and gymnasium ids."""
    if not env:
        raise UsageError(f"{where}: no env; add e.g. `env: mpe/simple_spread` (or config.env). "
                         f"MPE envs: {', '.join(MPE_ENVS)}")
    if isinstance(env, str) and env not in MPE_ENVS and not {".", ":"} & set(env) and env not in gym.registry:
        raise UsageError(f"{where}: unknown env {env!r}: it is not an rllib_maddpg env, not a "
                         f"gymnasium id and not a class path.{did_you_mean(env, MPE_ENVS)} "
                         f"MPE envs: {', '.join(MPE_ENVS)}")


def validate_variants(trainable, config: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Each grid point's config (as Tune expands them), each through the algorithm's
    `get_default_config().update_from_dict(variant).validate()` if it has one.

    MADDPGConfig.validate() rejects unknown keys and bad values and builds the env once.
    """
    try:
        variants = list(generate_variants(copy.deepcopy(config)))
    except Exception as e:  # Tune's own error about a malformed grid
        raise UsageError(f"{where}: config: bad grid_search: {e}") from e
    if not variants:
        raise UsageError(f"{where}: config: every grid_search needs a non-empty list of values")
    get_default_config = getattr(trainable, "get_default_config", None)
    if get_default_config is not None and not isinstance(get_default_config(), dict):
        for resolved, variant in variants:
            try:
                get_default_config().update_from_dict(variant).validate()
            except Exception as e:  # any failure here is a config problem
                label = f" (grid_search values {format_vars(resolved)})" if resolved else ""
                raise UsageError(f"{where}: invalid config{label}: {str(e).strip() or type(e).__name__}") from e
    return [variant for _, variant in variants]
