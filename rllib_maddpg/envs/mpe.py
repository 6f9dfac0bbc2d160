"""The nine MPE scenarios of the MADDPG paper, registered as ``mpe/<name>``.

Why this module exists: MPE (from the ``mpe2`` package) encodes actions in
two ways that a generic wrapper cannot guess, so we read the scenario's world
(``agent.movable``, ``agent.silent``, ``world.dim_c``) and tell the wrapper:

* continuous mode (our default, as in the original MADDPG): each action is a
  ``Box(0, 1)`` made of probability vectors, ``[no-op, left, right, down, up]``
  for movable agents followed by ``dim_c`` communication entries for speaking
  agents. The policy should output one simplex per segment (the original code
  used Gumbel-Softmax), so we publish the segment sizes in
  ``env.action_simplex_segments``.
* discrete mode: mpe2 packs move and say of a movable speaking agent into one
  ``Discrete(5 * dim_c)`` decoded as ``move = a % 5, say = a // 5``. We expose
  it as ``MultiDiscrete([5, dim_c])`` (one head each) and re-pack it.

Usage: ``config.environment("mpe/simple_spread", env_config={"N": 3})`` once
``rllib_maddpg.envs`` is imported, or ``make_mpe_env("simple_spread", {...})``.

``env_config={"paper_physics": True}`` steps the world in the order of the
paper's MPE (openai/multiagent-particle-envs, core.py): the velocity is
updated first and the position moves with the *new* velocity. mpe2 moves the
position with the old velocity and updates the velocity after, so there an
action first moves the agent one step later and r_t does not depend on a_t.
Default False (mpe2's own physics).

``env_config={"original_adversary_reward": True}`` (simple_adversary only)
pays the adversary -distance^2 to the goal, as the original MPE did; mpe2
pays -distance. Default False.

``env_config={"original_team_reward": True}`` (simple_speaker_listener,
simple_reference, simple_spread: the original's ``world.collaborative``
scenarios) pays every agent the sum over all agents of the original MPE's
per-agent reward, as the original environment did (``shared_reward``). mpe2
pays each agent its own reward, mixed with a global term by ``local_ratio``
in simple_reference and simple_spread, and its simple_reference reward is
-distance where the original's is -distance^2. On speaker-listener the
original's reward is twice mpe2's. Default False.

``env_config={"backend": "jaxmarl"}`` steps the scenario with JaxMARL's JAX
port instead of mpe2 (optional extra ``jaxmarl``; envs/jaxmarl_mpe.py): the
same agents, spaces, observations and rewards to float32 precision, and
MADDPG's lockstep sampler then steps all of a runner's
``num_envs_per_env_runner`` copies in one jitted call. Default ``"mpe2"``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections import defaultdict
from types import ModuleType
from typing import Any, Mapping

import numpy as np

from pettingzoo.utils.conversions import aec_to_parallel_wrapper
from ray.tune.registry import register_env

from rllib_maddpg.envs.mpe_metrics import metrics_for
from rllib_maddpg.envs.pettingzoo_env import (
    MultiDiscreteToDiscrete,
    PettingZooMultiAgentEnv,
)

# name -> mpe2 module. Note simple_speaker_listener is v4, all others v3.
_SCENARIO_MODULES = {
    "simple": "mpe2.simple_v3",
    "simple_adversary": "mpe2.simple_adversary_v3",
    "simple_crypto": "mpe2.simple_crypto_v3",
    "simple_push": "mpe2.simple_push_v3",
    "simple_reference": "mpe2.simple_reference_v3",
    "simple_speaker_listener": "mpe2.simple_speaker_listener_v4",
    "simple_spread": "mpe2.simple_spread_v3",
    "simple_tag": "mpe2.simple_tag_v3",
    "simple_world_comm": "mpe2.simple_world_comm_v3",
}
MPE_SCENARIOS: tuple[str, ...] = tuple(_SCENARIO_MODULES)

DEFAULT_MPE_KWARGS = {"continuous_actions": True, "max_cycles": 25}


def make_mpe_env(
    scenario: str, env_config: Mapping[str, Any] | None = None
) -> PettingZooMultiAgentEnv:
    """Build an MPE scenario as a ``PettingZooMultiAgentEnv``.

    ``env_config`` holds keyword arguments of the scenario's ``parallel_env``
    (e.g. ``N``, ``local_ratio``, ``max_cycles``, ``continuous_actions``); it may
    be an RLlib ``EnvContext``, of which only the dict items are used.
    """
    module = _scenario_module(scenario)
    kwargs = {**DEFAULT_MPE_KWARGS, **dict(env_config or {})}
    backend = kwargs.pop("backend", "mpe2")
    if backend == "jaxmarl":
        return _jaxmarl_env(scenario, kwargs)
    if backend != "mpe2":
        raise ValueError(
            f"env_config backend={backend!r} is invalid: use 'mpe2' (default) or 'jaxmarl' "
            "(JaxMARL's batched MPE: pip install 'rllib-maddpg[jaxmarl]')."
        )
    paper_physics = kwargs.pop("paper_physics", False)
    if not isinstance(paper_physics, bool):
        raise ValueError(
            f"env_config paper_physics={paper_physics!r} is invalid: use True (the "
            "paper's MPE integration order) or False (mpe2's)."
        )
    squared_adversary_reward = _pop_flag(kwargs, "original_adversary_reward", scenario,
                                         ("simple_adversary",))
    team_reward = _pop_flag(kwargs, "original_team_reward", scenario, tuple(_ORIGINAL_REWARDS))
    if team_reward and "local_ratio" in kwargs:
        raise ValueError(
            f"env_config for {scenario!r} sets both original_team_reward and local_ratio: "
            "the original's team reward has no local/global mix. Remove local_ratio."
        )
    _check_kwargs(scenario, module, kwargs)

    # mpe2's parallel_env(...) is aec_to_parallel(OrderEnforcing(ClipOutOfBounds
    # (or AssertOutOfBounds)(raw_env(...)))). Those two wrappers forward every
    # attribute read of aec_to_parallel's step (~90 per joint step) through
    # Python __getattr__ chains: half of the env's stepping time. We build the
    # same parallel env without them: the same scenario, physics, observations
    # and rewards (tests/unit/test_mpe_env.py compares trajectories); actions are
    # clipped to the Box bounds here (ClipOutOfBounds' job), Discrete actions
    # come from our own action heads (always in range), and the wrapper below
    # enforces reset-before-step (OrderEnforcing's job).
    raw_env = module.raw_env(**kwargs)  # mpe2 SimpleEnv: has .world and .continuous_actions
    if paper_physics:
        use_paper_physics(raw_env.world)
    if squared_adversary_reward:
        raw_env.scenario.adversary_reward = _squared_distance_reward
    if team_reward:
        use_original_team_reward(raw_env, _ORIGINAL_REWARDS[scenario])
    par_env = _ParallelMPE(raw_env)
    metrics = metrics_for(scenario)
    if raw_env.continuous_actions:
        return PettingZooMultiAgentEnv(
            par_env, action_simplex_segments=_simplex_segments(raw_env.world),
            episode_metrics=metrics, clip_box_actions=True, strict_lockstep=True,
        )
    return PettingZooMultiAgentEnv(
        par_env, action_adapters=_move_say_adapters(par_env, raw_env.world),
        episode_metrics=metrics, strict_lockstep=True,
    )


def _jaxmarl_env(scenario: str, kwargs: dict):
    """The JaxMARL backend's one-copy env. jax takes one CPU thread and the CPU
    unless the caller set XLA_FLAGS / JAX_PLATFORMS before jax was imported:
    env runners act on CPU and run one torch thread each (README)."""
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    from rllib_maddpg.envs.jaxmarl_mpe import JaxMARLMPEEnv

    return JaxMARLMPEEnv(scenario, kwargs)


class _ParallelMPE(aec_to_parallel_wrapper):
    """PettingZoo's aec_to_parallel, stepping without its `last()` per agent: that call
    computes the acting agent's observation and drops it, N observations per joint step
    for nothing (MPE's observations are pure functions of the world; at N = 12 they are
    a third of simple_spread's stepping time, O(N) each). Everything else as PettingZoo's."""

    def step(self, actions):
        aec = self.aec_env
        rewards = defaultdict(int)
        for agent in aec.agents:
            if agent != aec.agent_selection:
                raise AssertionError(f"expected agent {agent} got agent {aec.agent_selection}: the "
                                     "parallel wrapper expects agents to step in a cycle.")
            aec.step(actions[agent])
            for other in aec.agents:
                rewards[other] += aec.rewards[other]
        terminations, truncations, infos = dict(**aec.terminations), dict(**aec.truncations), dict(**aec.infos)
        observations = {agent: aec.observe(agent) for agent in aec.agents}
        while aec.agents and (aec.terminations[aec.agent_selection] or aec.truncations[aec.agent_selection]):
            aec.step(None)
        self.agents = aec.agents
        return observations, rewards, terminations, truncations, infos


def register_mpe_envs() -> None:
    """Register ``mpe/<scenario>`` for all of ``MPE_SCENARIOS`` (idempotent, cheap)."""
    for scenario in MPE_SCENARIOS:
        register_env(f"mpe/{scenario}", functools.partial(make_mpe_env, scenario))


def paper_integrate_state(world, p_force) -> None:
    """One physics step in the paper's MPE order (multiagent-particle-envs core.py).

        v <- v (1 - damping) + (F / m) dt,  capped at max_speed;   p <- p + v dt

    mpe2's `World.integrate_state` moves p with the old v before updating v.
    """
    for i, entity in enumerate(world.entities):
        if not entity.movable:
            continue
        entity.state.p_vel = entity.state.p_vel * (1 - world.damping)
        if p_force[i] is not None:
            entity.state.p_vel += (p_force[i] / entity.mass) * world.dt
        if entity.max_speed is not None:
            speed = np.sqrt(np.square(entity.state.p_vel[0]) + np.square(entity.state.p_vel[1]))
            if speed > entity.max_speed:
                entity.state.p_vel = entity.state.p_vel / speed * entity.max_speed
        entity.state.p_pos += entity.state.p_vel * world.dt


def use_paper_physics(world) -> None:
    """Makes this mpe2 world integrate as the paper's MPE did (env_config `paper_physics`)."""
    world.integrate_state = types.MethodType(paper_integrate_state, world)


def _squared_distance_reward(agent, world) -> float:
    """The original simple_adversary's adversary reward: -|p - p_goal|^2."""
    return -float(np.sum(np.square(agent.state.p_pos - agent.goal_a.state.p_pos)))


def _original_speaker_listener_reward(agent, world) -> float:
    """Both agents: -|p_listener - p_goal|^2 (mpe2's per-agent reward is the same).

    The speaker (agent 0) holds both: goal_a is the listener, goal_b its goal."""
    speaker = world.agents[0]
    return -float(np.sum(np.square(speaker.goal_a.state.p_pos - speaker.goal_b.state.p_pos)))


def _original_reference_reward(agent, world) -> float:
    """-|p_listener - p_goal|^2 for the agent this one guides (mpe2: -distance)."""
    if agent.goal_a is None or agent.goal_b is None:
        return 0.0
    return -float(np.sum(np.square(agent.goal_a.state.p_pos - agent.goal_b.state.p_pos)))


def _original_spread_reward(agent, world) -> float:
    """-sum_l min_j |p_j - p_l| - collisions, as the original counted them.

    The original's collision loop includes the agent itself (always in
    contact), a constant -1 per step that we keep so returns compare.
    """
    rew = 0.0
    for landmark in world.landmarks:
        rew -= min(float(np.sqrt(np.sum(np.square(a.state.p_pos - landmark.state.p_pos))))
                   for a in world.agents)
    if agent.collide:
        for other in world.agents:
            dist = np.sqrt(np.sum(np.square(other.state.p_pos - agent.state.p_pos)))
            rew -= float(dist < other.size + agent.size)
    return rew


# The original's world.collaborative scenarios and their per-agent rewards.
_ORIGINAL_REWARDS = {
    "simple_speaker_listener": _original_speaker_listener_reward,
    "simple_reference": _original_reference_reward,
    "simple_spread": _original_spread_reward,
}


def use_original_team_reward(raw_env, per_agent_reward) -> None:
    """Pays every agent sum_j r_j, as the original's shared_reward did (env_config
    `original_team_reward`); mpe2's local_ratio mix is switched off."""
    def team_reward(agent, world) -> float:
        return sum(per_agent_reward(a, world) for a in world.agents)

    raw_env.local_ratio = None
    raw_env.scenario.reward = team_reward


# ------------------------------------------------------------------- helpers


def _pop_flag(kwargs: dict, key: str, scenario: str, scenarios: tuple[str, ...]) -> bool:
    """Removes the boolean env_config `key` from kwargs, checked for type and scenario."""
    value = kwargs.pop(key, False)
    if not isinstance(value, bool) or (value and scenario not in scenarios):
        raise ValueError(
            f"env_config {key}={value!r} is invalid for {scenario!r}: it is True or "
            f"False, and only {', '.join(scenarios)} {'has' if len(scenarios) == 1 else 'have'} it."
        )
    return value


def _scenario_module(scenario: str) -> ModuleType:
    if scenario not in _SCENARIO_MODULES:
        raise ValueError(
            f"Unknown MPE scenario {scenario!r}. Valid scenarios: {list(MPE_SCENARIOS)}."
        )
    return importlib.import_module(_SCENARIO_MODULES[scenario])


@functools.lru_cache(maxsize=None)
def accepted_kwargs(scenario: str) -> tuple[str, ...] | None:
    """Keyword arguments the scenario's ``parallel_env`` accepts (None = any).

    mpe2's ``parallel_env`` is a ``**kwargs`` passthrough, so read the
    signature of the scenario's ``raw_env.__init__`` instead.
    """
    params = inspect.signature(_scenario_module(scenario).raw_env.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(name for name in params if name != "self")


def _check_kwargs(scenario: str, module: ModuleType, kwargs: Mapping) -> None:
    accepted = accepted_kwargs(scenario)
    if accepted is None:
        return
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(
            f"env_config for MPE scenario {scenario!r} has unknown key(s) {unknown}. "
            f"{module.__name__}.parallel_env accepts: {list(accepted)}. Remove or "
            f"rename the unknown keys."
        )


def _simplex_segments(world) -> dict[str, list[int] | None]:
    """Sizes of the probability vectors in each agent's continuous action."""
    segments = {}
    for agent in world.agents:
        seg = []
        if agent.movable:
            seg.append(2 * world.dim_p + 1)  # [no-op, left, right, down, up]
        if not agent.silent:
            seg.append(world.dim_c)
        segments[agent.name] = seg or None
    return segments


def _move_say_adapters(par_env, world) -> dict[str, MultiDiscreteToDiscrete]:
    """MultiDiscrete([moves, dim_c]) adapters for movable speaking agents."""
    n_moves = 2 * world.dim_p + 1
    adapters = {}
    for agent in world.agents:
        if not (agent.movable and not agent.silent):
            continue
        adapter = MultiDiscreteToDiscrete([n_moves, world.dim_c])
        env_n = par_env.action_space(agent.name).n
        if env_n != n_moves * world.dim_c:  # mpe2 changed its encoding?
            raise RuntimeError(
                f"MPE agent {agent.name!r} has Discrete({env_n}) actions, expected "
                f"{n_moves} moves x {world.dim_c} messages = {n_moves * world.dim_c}. "
                f"The installed mpe2 encodes actions differently; update "
                f"rllib_maddpg/envs/mpe.py to match it."
            )
        adapters[agent.name] = adapter
    return adapters
