"""The YAML experiment file (the old RLlib format), checked before Ray starts.

Bad input is one clear `rllib: error:` line here, not a traceback from a
trial minutes later: unknown keys, values of the wrong kind, and every grid
variant's config through the algorithm's own `validate()`.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import os
import warnings
from typing import Any, Dict, List, Optional

from rllib_maddpg.cli.errors import UsageError, did_you_mean

# The keys of one experiment (`rllib train --help` shows them).
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_config", "storage_path", "num_samples",
                   "wandb", "mlflow")
# `wandb:` / `mlflow:`: Tune's own logger callbacks (module, class, the package they need).
TRACKERS = {"wandb": ("ray.air.integrations.wandb", "WandbLoggerCallback", "wandb"),
            "mlflow": ("ray.air.integrations.mlflow", "MLflowLoggerCallback", "mlflow")}
# The keys of `checkpoint_config`, as ray.tune.CheckpointConfig takes them.
CHECKPOINT_KEYS = ("checkpoint_frequency", "checkpoint_at_end", "num_to_keep",
                   "checkpoint_score_attribute", "checkpoint_score_order")


@dataclasses.dataclass
class ExperimentSpec:
    """One checked experiment, ready for ray.tune.Tuner."""

    name: str
    run: str
    trainable: Any
    config: Dict[str, Any]  # may hold {grid_search: [...]} values; Tune expands them
    stop: Dict[str, Any]  # flat `a/b` keys
    checkpoint_config: Dict[str, Any]  # ray.tune.CheckpointConfig kwargs
    storage_path: str
    num_samples: int
    variants: List[Dict[str, Any]]  # the config of each grid point
    trackers: List[Any]  # (logger callback class, its kwargs)

    @property
    def num_trials(self) -> int:
        return self.num_samples * len(self.variants)

    def tracking_callbacks(self) -> List[Any]:
        return [cls(**kwargs) for cls, kwargs in self.trackers]


def parse_json_flag(flag: str, text: Optional[str]) -> Dict[str, Any]:
    try:
        value = {} if text is None else json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag} is not valid JSON ({e.msg} at column {e.colno}): {text!r}. Quote "
                         f"it for the shell, e.g. {flag} '{{\"training_iteration\": 10}}'") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object ({{...}}), got {text!r}")
    return value


def load_experiment_file(path: str) -> Dict[str, Dict[str, Any]]:
    """Reads the YAML file: {experiment name: {run, env, stop, config, ...}}."""
    import yaml

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


def prepare_experiment(name: str, raw: Dict[str, Any], stop_override: Dict[str, Any],
                       config_override: Dict[str, Any], args) -> ExperimentSpec:
    """Checks one experiment of the file and applies the command-line flags."""
    where = f"experiment {name!r}"
    unknown = [k for k in raw if k not in EXPERIMENT_KEYS]
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}.{did_you_mean(unknown[0], EXPERIMENT_KEYS)} "
                         f"Allowed keys: {', '.join(EXPERIMENT_KEYS)} (see `rllib train --help`).")
    run = raw.get("run")
    if not isinstance(run, str) or not run:
        raise UsageError(f"{where}: `run` is missing; set it to a trainable, e.g. `run: MADDPG`")
    trainable = resolve_trainable(run, where)

    config = _deep_merge(_mapping(raw, "config", where), config_override)
    if raw.get("env") is not None and config.get("env") not in (None, raw["env"]):
        raise UsageError(f"{where}: the env is given twice, as env: {raw['env']!r} and config.env: "
                         f"{config['env']!r}; keep one")
    if raw.get("env") is not None:
        config["env"] = raw["env"]
    if config.get("env") is None:
        raise UsageError(f"{where}: no env; add e.g. `env: mpe/simple_spread` (or config.env). "
                         f"MPE scenarios: {', '.join(mpe_env_names())}")
    check_env(config["env"], where)

    stop = {**flatten_stop(_mapping(raw, "stop", where), where), **flatten_stop(stop_override, "--stop")}

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
    return ExperimentSpec(
        name=name, run=run, trainable=trainable, config=config, stop=stop,
        checkpoint_config=_checkpoint_config(raw, args, where),
        storage_path=storage_path, num_samples=num_samples,
        variants=validate_variants(trainable, config, where), trackers=_trackers(raw, args, name, where),
    )


def _trackers(raw: Dict[str, Any], args, name: str, where: str) -> List[Any]:
    """(callback class, kwargs) of Tune's logger callbacks, from `wandb:`/`mlflow:` and the flags."""
    trackers = {key: _mapping(raw, key, where, f" of {cls_name} arguments")
                for key, (_, cls_name, _) in TRACKERS.items() if raw.get(key) is not None}
    if getattr(args, "wandb_project", None):
        trackers.setdefault("wandb", {})["project"] = args.wandb_project
    if getattr(args, "mlflow_tracking_uri", None):
        trackers.setdefault("mlflow", {})["tracking_uri"] = args.mlflow_tracking_uri
    if "mlflow" in trackers:
        trackers["mlflow"].setdefault("experiment_name", name)
    callbacks = []
    for key, kwargs in trackers.items():
        module, cls_name, package = TRACKERS[key]
        try:
            importlib.import_module(package)
        except ImportError:
            raise UsageError(f"{where}: `{key}` tracking needs the {package} package: "
                             "pip install 'rllib-maddpg[tracking]'") from None
        cls = getattr(importlib.import_module(module), cls_name)
        params = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(kwargs) - set(params))
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise UsageError(f"{where}: `{key}` has unknown argument(s) {unknown}; {cls_name} "
                             f"takes {', '.join(p for p in params if p != 'self')}")
        callbacks.append((cls, kwargs))
    return callbacks


def _mapping(raw: Dict[str, Any], key: str, where: str, what: str = "") -> Dict[str, Any]:
    """raw[key], a mapping ({} if absent)."""
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise UsageError(f"{where}: `{key}` must be a mapping{what}, got {type(value).__name__}")
    return dict(value or {})


def _deep_merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "grid_search" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(nested: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested mappings -> Tune's flat `a/b` keys (as in its stop criteria and results)."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flatten_stop(stop: Dict[str, Any], where: str) -> Dict[str, Any]:
    flat = flatten(stop)
    for key, value in flat.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: stop criterion {key!r} must be a number (a trial stops "
                             f"when result[{key!r}] >= it), got {value!r}")
    return flat


def _checkpoint_config(raw: Dict[str, Any], args, where: str) -> Dict[str, Any]:
    cfg = _mapping(raw, "checkpoint_config", where, f" with keys {list(CHECKPOINT_KEYS)}")
    unknown = [k for k in cfg if k not in CHECKPOINT_KEYS]
    if unknown:
        raise UsageError(f"{where}: unknown checkpoint_config key(s) {unknown}."
                         f"{did_you_mean(unknown[0], CHECKPOINT_KEYS)} Allowed: {list(CHECKPOINT_KEYS)}")
    flags = {"checkpoint_frequency": getattr(args, "checkpoint_freq", None),
             "checkpoint_at_end": getattr(args, "checkpoint_at_end", None)}
    cfg = {"checkpoint_at_end": True,  # never lose the trained policies
           **cfg, **{k: v for k, v in flags.items() if v is not None}}
    from ray.tune import CheckpointConfig

    try:
        CheckpointConfig(**cfg)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{where}: invalid checkpoint_config {cfg}: {e}") from e
    return cfg


def resolve_trainable(run: str, where: str):
    """The trainable class for `run`: registered with Tune, or one of RLlib's algorithms."""
    from ray.rllib.algorithms.registry import ALGORITHMS
    from ray.tune.error import TuneError
    from ray.tune.registry import get_trainable_cls

    try:
        with warnings.catch_warnings():
            # On a miss RLlib registers all its algorithms, and gymnasium warns about their envs.
            warnings.filterwarnings("ignore", category=UserWarning, module="gymnasium")
            return get_trainable_cls(run)
    except TuneError:
        known = ["MADDPG", *ALGORITHMS]
        raise UsageError(f"{where}: run: {run!r} is not a registered trainable."
                         f"{did_you_mean(run, known)} Known: {', '.join(known)}") from None
    except ImportError as e:
        raise UsageError(f"{where}: cannot import the trainable {run!r}: {e}") from e


def mpe_env_names() -> List[str]:
    from rllib_maddpg.envs import MPE_SCENARIOS

    return [f"mpe/{s}" for s in MPE_SCENARIOS]


def check_env(env: Any, where: str) -> None:
    """A friendlier error than RLlib's for an env name that nothing defines: the
    CLI knows rllib_maddpg's envs (mpe/<scenario>), class paths and gymnasium ids."""
    if not isinstance(env, str) or env in mpe_env_names() or "." in env or ":" in env:
        return
    import gymnasium as gym

    if env not in gym.registry:
        raise UsageError(f"{where}: unknown env {env!r}: it is not an rllib_maddpg env, not a "
                         f"gymnasium id and not a class path.{did_you_mean(env, mpe_env_names())} "
                         f"MPE envs: {', '.join(mpe_env_names())}")


def validate_variants(trainable, config: Dict[str, Any], where: str) -> List[Dict[str, Any]]:
    """Each grid point's config (as Tune expands them), each through the algorithm's
    `get_default_config().update_from_dict(variant).validate()` if it has one.

    MADDPGConfig.validate() rejects unknown keys and bad values and builds the env once.
    """
    from ray.tune.search.variant_generator import format_vars, generate_variants

    try:
        variants = list(generate_variants(copy.deepcopy(config)))
    except Exception as e:  # noqa: BLE001 - Tune's own error about a malformed grid
        raise UsageError(f"{where}: config: bad grid_search: {e}") from e
    if not variants:
        raise UsageError(f"{where}: config: every grid_search needs a non-empty list of values")
    get_default_config = getattr(trainable, "get_default_config", None)
    if get_default_config is not None and not isinstance(get_default_config(), dict):
        for resolved, variant in variants:
            try:
                get_default_config().update_from_dict(variant).validate()
            except Exception as e:  # noqa: BLE001 - any failure here is a config problem
                label = f" (grid_search values {format_vars(resolved)})" if resolved else ""
                raise UsageError(f"{where}: invalid config{label}: {str(e).strip() or type(e).__name__}") from e
    return [variant for _, variant in variants]
