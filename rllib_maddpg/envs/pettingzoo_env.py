"""Run a PettingZoo ``ParallelEnv`` as an RLlib (old API stack) ``MultiAgentEnv``.

Why not RLlib's own ``ParallelPettingZooEnv``?

* It takes the agent list from a ``set``, so agent order is arbitrary. MADDPG's
  centralised critics concatenate all agents' observations and actions, so the
  order must be fixed and must be the env's own ``possible_agents`` order.
* It does no validation. MADDPG silently learns garbage when an observation
  turns NaN, and RLlib's wrapper sets ``__all__`` from the agents of the last
  step only. We check values and fail loudly, naming the agent, the step and
  the fix; agents that finish early, die, leave or arrive late are passed on
  as the env reports them (the lockstep sampler masks them, or refuses them
  under ``strict_lockstep``).
* MPE's discrete mode packs "move" and "say" into one ``Discrete`` and its
  continuous mode expects probability vectors. ``action_adapters`` and
  ``action_simplex_segments`` let ``rllib_maddpg.envs.mpe`` expose both
  properly without special cases in this module.

All per-step work is limited to what is needed (no ``space.contains`` calls);
keep it that way, this wrapper sits in the sampling hot loop.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections import OrderedDict
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from rllib_maddpg.env_checks import not_finite

AgentID = str

SUPPORTED_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete)
# Observations may also be Dict/Tuple of these; they are flattened (envs/spaces.py).
SUPPORTED_OBS_SPACES = SUPPORTED_SPACES + (gym.spaces.Dict, gym.spaces.Tuple)

@runtime_checkable
class ActionAdapter(Protocol):
    """Maps the action space the wrapper exposes to the action the env takes.

    ``space`` is what RLlib (and the policy) sees; ``to_env`` converts one
    action from ``space`` into the underlying env's action space.
    """

    space: gym.Space

    def to_env(self, action: Any) -> Any: ...


class MultiDiscreteToDiscrete:
    """Expose a flattened ``Discrete(prod(nvec))`` as ``MultiDiscrete(nvec)``.

    The first component is the least significant digit, i.e. for
    ``nvec = [5, 10]`` the env receives ``a[0] + 5 * a[1]``. This is how MPE
    decodes its combined move+say action (``move = a % 5, say = a // 5``).
    """

    def __init__(self, nvec: Sequence[int]):
        self.space = gym.spaces.MultiDiscrete(list(nvec))
        self._strides = np.concatenate(([1], np.cumprod(nvec[:-1]))).astype(np.int64)

    def to_env(self, action: Any) -> int:
        return int(np.dot(np.asarray(action, dtype=np.int64), self._strides))

    def __repr__(self) -> str:
        return f"MultiDiscreteToDiscrete(nvec={self.space.nvec.tolist()})"


class PettingZooMultiAgentEnv(MultiAgentEnv):
    """A PettingZoo ``ParallelEnv`` seen by RLlib as a lockstep ``MultiAgentEnv``.

    Args:
        env: A PettingZoo ``ParallelEnv`` (not an AEC env).
        action_adapters: Optional ``{agent: ActionAdapter}``; the adapter's
            ``space`` replaces the env's action space for that agent and its
            ``to_env`` converts each action before it reaches the env.
        episode_metrics: Optional tracker of task metrics, read with
            ``episode_metrics()`` at the end of an episode.
        action_simplex_segments: Optional ``{agent: [n1, n2, ...] | None}``.
            For a Box action that is really a concatenation of probability
            vectors, the sizes of those vectors (each sums to 1). Missing
            agents default to None.
        clip_box_actions: Clip Box actions to the space's bounds before the
            env sees them (what PettingZoo's ClipOutOfBoundsWrapper does, for
            an env built without it).
        strict_lockstep: Declares that every agent acts at every step of
            every episode (MPE). MADDPG's config key of the same name reads
            it when left at None: the critics then take no alive flags and
            an agent that leaves early is an error.

    Observations of Box spaces are returned as float32 arrays and the exposed
    Box observation spaces are float32. ``agents`` follows the env's
    ``agents``: an agent that is terminated, truncated or gone is sent no
    more actions; the episode is over when the env has no agents left.
    """

    def __init__(
        self,
        env: ParallelEnv,
        action_adapters: Mapping[AgentID, ActionAdapter] | None = None,
        action_simplex_segments: Mapping[AgentID, Sequence[int] | None] | None = None,
        episode_metrics: Any = None,
        clip_box_actions: bool = False,
        strict_lockstep: bool = False,
    ):
        _check_is_parallel_env(env)
        # Optional per-episode task metrics (e.g. mpe_metrics): an object with
        # on_reset(env), on_step(env), on_episode_end(env) -> {name: float},
        # called with the unwrapped PettingZoo env.
        self._episode_metrics = episode_metrics
        self.par_env = env
        self.possible_agents = list(env.possible_agents)
        self.agents = list(self.possible_agents)
        self.strict_lockstep = bool(strict_lockstep)
        self._agent_ids = set(self.possible_agents)  # old-stack get_agent_ids()
        super().__init__()

        action_adapters = dict(action_adapters or {})
        _check_known_agents(action_adapters, self.possible_agents, "action_adapters")
        self.action_adapters = action_adapters

        self.observation_spaces = {
            agent: _exposed_observation_space(agent, env.observation_space(agent))
            for agent in self.possible_agents
        }
        self.action_spaces = {
            agent: _exposed_action_space(agent, env.action_space(agent), action_adapters)
            for agent in self.possible_agents
        }
        # OrderedDict: gymnasium's Dict sorts plain-dict keys, we want env order.
        self.observation_space = gym.spaces.Dict(OrderedDict(self.observation_spaces))
        self.action_space = gym.spaces.Dict(OrderedDict(self.action_spaces))

        self.action_simplex_segments = _checked_simplex_segments(
            action_simplex_segments, self.action_spaces
        )

        # Precomputed per-agent hot-loop helpers.
        self._box_obs_agents = frozenset(
            agent
            for agent, space in self.observation_spaces.items()
            if isinstance(space, gym.spaces.Box)
        )
        self._action_converters = {
            agent: _action_converter(
                env.action_space(agent), action_adapters.get(agent), clip_box_actions)
            for agent in self.possible_agents
        }
        self._episode_step = 0
        self._episode_over = True  # step() before reset() is an error.

    # ------------------------------------------------------------------ API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._episode_step = 0
        self._episode_over = False
        self.agents = list(self.par_env.agents)
        if self._episode_metrics is not None:
            self._episode_metrics.on_reset(self.par_env.unwrapped)
        return self._checked_observations(obs), dict(infos or {})

    def step(self, action_dict: Mapping[AgentID, Any]):
        if self._episode_over:
            raise RuntimeError(
                "step() called on an env whose episode is over (or that was never "
                "reset); call reset() first."
            )
        env_actions = self._actions_to_env(action_dict)
        obs, rewards, terms, truncs, infos = self.par_env.step(env_actions)
        self._episode_step += 1
        self.agents = list(self.par_env.agents)
        if self._episode_metrics is not None:
            self._episode_metrics.on_step(self.par_env.unwrapped)

        terminateds, truncateds = self._done_flags(env_actions, terms, truncs)
        obs = self._checked_observations(obs)
        rewards = self._checked_rewards(rewards)
        return obs, rewards, terminateds, truncateds, dict(infos or {})

    def episode_metrics(self) -> dict:
        """The task metrics of the episode so far (call at its end); {} without a tracker."""
        if self._episode_metrics is None:
            return {}
        return self._episode_metrics.on_episode_end(self.par_env.unwrapped)

    def render(self):
        return self.par_env.render()

    def close(self):
        self.par_env.close()

    # ------------------------------------------------------------ internals

    def _actions_to_env(self, action_dict: Mapping[AgentID, Any]) -> dict:
        """The actions of the agents the env has now, converted for the env."""
        env_actions = {}
        for agent in self.agents:
            try:
                action = action_dict[agent]
            except KeyError:
                raise RuntimeError(
                    f"action_dict has no action for agent {agent!r} at step "
                    f"{self._episode_step + 1} of the episode, which the env still has "
                    f"(its agents now: {self.agents}): send an action for every agent the "
                    "env has until it is terminated or truncated."
                ) from None
            convert = self._action_converters[agent]
            env_actions[agent] = action if convert is None else convert(action)
        return env_actions

    def _done_flags(self, acted: Mapping, terms: Mapping, truncs: Mapping) -> tuple[dict, dict]:
        """Each agent's flags for this step, and RLlib's "__all__" flags.

        The episode is over when the env has no agents left (PettingZoo's
        rule). RLlib needs exactly one "__all__" flag set then: "terminated"
        if every agent that acted at this last step terminated, otherwise
        "truncated" so that value targets still bootstrap.
        """
        terminateds = {a: bool(terms.get(a, False)) for a in acted}
        truncateds = {a: bool(truncs.get(a, False)) for a in acted}
        over = not self.agents
        self._episode_over = over
        terminateds["__all__"] = over and all(terminateds.values())
        truncateds["__all__"] = over and not terminateds["__all__"]
        return terminateds, truncateds

    def _checked_observations(self, obs: Mapping) -> dict:
        out = {}
        for agent, o in obs.items():
            if agent not in self._agent_ids:
                raise RuntimeError(
                    f"The env returned an observation for agent {agent!r} at step "
                    f"{self._episode_step}, which is not in possible_agents "
                    f"{self.possible_agents}. Fix the env's possible_agents."
                )
            if agent in self._box_obs_agents:
                o = np.asarray(o, dtype=np.float32)
                if not np.isfinite(o).all():
                    raise not_finite(agent, "observation", self._episode_step, o)
            out[agent] = o
        return out

    def _checked_rewards(self, rewards: Mapping) -> dict:
        out = dict(rewards)
        # One check for all agents; find the culprit only when it fails.
        if not math.isfinite(sum(out.values())):
            for agent, r in out.items():
                if not math.isfinite(r):
                    raise not_finite(agent, "reward", self._episode_step, r)
        return out


class PettingZooEnv(PettingZooMultiAgentEnv):
    """A PettingZoo parallel env named by its module in ``env_config``.

    For YAML files, Tune and ``rllib evaluate``, which name envs by class
    path and need no registration in the user's process::

        env: rllib_maddpg.envs.PettingZooEnv
        env_config: {pettingzoo_env: pettingzoo.sisl.pursuit_v5, max_cycles: 100}

    builds ``pettingzoo.sisl.pursuit_v5.parallel_env(max_cycles=100)``: the
    other keys of ``env_config`` are the env's own keyword arguments.
    """

    def __init__(self, env_config: Mapping[str, Any] | None = None, **kwargs: Any):
        # RLlib builds a class-path env as Cls(**env_config); Python users may pass the dict.
        config = {**dict(env_config or {}), **kwargs}
        name = config.pop("pettingzoo_env", None)
        if not name:
            raise ValueError(
                "PettingZooEnv needs env_config['pettingzoo_env'], the module of a PettingZoo "
                "env with a parallel_env() function, e.g. 'pettingzoo.sisl.pursuit_v5'."
            )
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ValueError(
                f"env_config['pettingzoo_env'] = {name!r} cannot be imported ({e}). Check the "
                "name and version (PettingZoo 1.27 has pursuit_v5 and no waterworld; "
                "docs/envs.md lists which env lives in which version and what it needs)."
            ) from e
        if not hasattr(module, "parallel_env"):
            raise ValueError(f"{name!r} has no parallel_env(): name a PettingZoo env module.")
        super().__init__(module.parallel_env(**config))


def register_pettingzoo_env(
    name: str,
    creator: Callable[[dict], ParallelEnv],
    **wrapper_kwargs: Any,
) -> None:
    """Register ``name`` with Ray Tune so that ``config.environment(name)`` works.

    ``creator(env_config)`` must return a PettingZoo ``ParallelEnv``; it is
    wrapped in ``PettingZooMultiAgentEnv(env, **wrapper_kwargs)``.
    """
    register_env(name, functools.partial(_create_wrapped, creator, wrapper_kwargs))


def _create_wrapped(creator, wrapper_kwargs, env_config):
    return PettingZooMultiAgentEnv(creator(env_config), **wrapper_kwargs)


# ---------------------------------------------------------------- validation


def _check_is_parallel_env(env: Any) -> None:
    if isinstance(env, AECEnv):
        raise TypeError(
            f"PettingZooMultiAgentEnv needs a PettingZoo ParallelEnv but got the AEC "
            f"env {env!r}. Convert it with "
            f"`pettingzoo.utils.conversions.aec_to_parallel(env)`, or build it with "
            f"the scenario's `parallel_env(...)` instead of `env(...)`."
        )
    if not isinstance(env, ParallelEnv):
        raise TypeError(
            f"PettingZooMultiAgentEnv needs a pettingzoo.ParallelEnv, got "
            f"{type(env).__name__} ({env!r}). Pass a PettingZoo parallel env, e.g. "
            f"`mpe2.simple_spread_v3.parallel_env(...)`."
        )


def _check_supported(agent: AgentID, space: gym.Space, kind: str) -> None:
    supported = SUPPORTED_OBS_SPACES if kind == "observation" else SUPPORTED_SPACES
    if not isinstance(space, supported):
        names = ", ".join(t.__name__ for t in supported)
        raise ValueError(
            f"Agent {agent!r} has an unsupported {kind} space {space}. MADDPG "
            f"supports {kind}s of these spaces: {names}. Convert it in a wrapper "
            f"before passing the env in (e.g. one Discrete or MultiDiscrete for a "
            f"Tuple of discrete actions, gymnasium.spaces.flatten_space for others)."
        )


def _check_known_agents(mapping: Mapping, agents: list, arg: str) -> None:
    unknown = [a for a in mapping if a not in agents]
    if unknown:
        raise ValueError(
            f"{arg} has entries for unknown agent(s) {unknown}; the env's agents are "
            f"{agents}. Use the env's possible_agents as keys."
        )


def _exposed_observation_space(agent: AgentID, space: gym.Space) -> gym.Space:
    _check_supported(agent, space, "observation")
    if isinstance(space, gym.spaces.Box) and space.dtype != np.float32:
        return gym.spaces.Box(
            low=space.low.astype(np.float32),
            high=space.high.astype(np.float32),
            dtype=np.float32,
        )
    return space


def _exposed_action_space(
    agent: AgentID, env_space: gym.Space, adapters: Mapping[AgentID, ActionAdapter]
) -> gym.Space:
    adapter = adapters.get(agent)
    if adapter is None:
        _check_supported(agent, env_space, "action")
        return env_space
    if not isinstance(adapter, ActionAdapter):
        raise TypeError(
            f"action_adapters[{agent!r}] = {adapter!r} is not an ActionAdapter; it "
            f"needs a `.space` (exposed gymnasium space) and a `.to_env(action)` method."
        )
    _check_supported(agent, adapter.space, "action (from its action adapter)")
    return adapter.space


def _checked_simplex_segments(
    segments: Mapping[AgentID, Sequence[int] | None] | None,
    action_spaces: Mapping[AgentID, gym.Space],
) -> dict[AgentID, list[int] | None]:
    segments = dict(segments or {})
    _check_known_agents(segments, list(action_spaces), "action_simplex_segments")
    out = {}
    for agent, space in action_spaces.items():
        seg = segments.get(agent)
        if seg is not None:
            seg = [int(n) for n in seg]
            if not (
                isinstance(space, gym.spaces.Box)
                and len(space.shape) == 1
                and space.shape[0] == sum(seg)
            ):
                raise ValueError(
                    f"action_simplex_segments[{agent!r}] = {seg} does not fit the "
                    f"agent's action space {space}: segments need a 1-D Box whose "
                    f"size is their sum. Fix the segments or set them to None."
                )
        out[agent] = seg
    return out


def _action_converter(env_space: gym.Space, adapter: ActionAdapter | None, clip: bool = False):
    """What to apply to each action before the env sees it (None = nothing)."""
    if adapter is not None:
        return adapter.to_env
    if isinstance(env_space, gym.spaces.Box) and clip:
        low, high, dtype = env_space.low, env_space.high, env_space.dtype
        return lambda action: np.clip(np.asarray(action, dtype=dtype), low, high)
    if isinstance(env_space, gym.spaces.Box):
        # Cast to the env's dtype: PettingZoo's ClipOutOfBoundsWrapper treats a
        # float64 action for a float32 Box as out of bounds and warns every step.
        return functools.partial(np.asarray, dtype=env_space.dtype)
    return None
