"""The nine MPE scenarios stepped B copies at a time by JaxMARL (optional extra).

Why this module exists: a lockstep sampler that runs one actor forward pass
for B env copies wants the envs to step B copies in one call too. JaxMARL
(``pip install 'rllib-maddpg[jaxmarl]'``, i.e. ``jaxmarl==0.2.0``) ports
PettingZoo's MPE to JAX, so ``jax.vmap`` of its ``step_env`` steps B copies
in one jitted call. This adapter makes it look like the plugin's own
``mpe/<scenario>`` envs (``envs/mpe.py``): the same agent order (mpe2's),
the same observation and action spaces (including the ``MultiDiscrete([5,
dim_c])`` move+say heads and the continuous probability-vector segments),
the same episode length, and observations, rewards and episode ends equal to
mpe2's step for step to float32 precision (tests/unit/test_jaxmarl_mpe.py
checks all nine scenarios in both action modes from mpe2's own initial
states).

What the adapter fixes (layout, not dynamics), scenario by scenario:

* all: JaxMARL's ``step`` ends an episode one step late (``done`` compares the
  step count *before* the increment with ``max_steps``: 26 steps for
  ``max_steps=25``) and auto-resets inside the jitted step. We call
  ``step_env`` (no auto-reset), count steps ourselves and truncate at
  ``max_cycles`` as mpe2 does. Box actions are clipped to [0, 1] as the
  plugin's mpe2 envs do (mpe2's ClipOutOfBounds wrapper).
* simple_crypto: JaxMARL orders the agents eve_0, alice_0, bob_0 (mpe2:
  eve_0, bob_0, alice_0) and encodes the goal colour and Alice's key as
  rows of ``[[255, 0, 0, 0], [0, 255, 0, 0]]`` (mpe2: one-hot, 1.0): we
  reorder the agents and reset with one-hot colours, so observations and
  rewards equal mpe2's.
* simple_tag and simple_world_comm: JaxMARL draws landmark positions from
  U(-1, 1), mpe2 from U(-0.9, 0.9): our reset redraws them as mpe2 does.
* discrete move+say agents (simple_reference, the world_comm leader):
  ``MultiDiscrete([5, dim_c])`` actions are packed as ``move + 5 * say``
  (JaxMARL decodes ``a % 5`` and ``a // 5``, as mpe2 does).

What it refuses (true differences, or options JaxMARL lacks):

* ``simple_tag`` with ``num_good != 1`` and ``simple_world_comm`` with
  ``num_good != 2``: JaxMARL's observation keeps the velocity of only the
  last one (tag) or two (world_comm) other agents, mpe2's those of all good
  agents; the shapes differ.
* mpe2 options without a JaxMARL counterpart: ``paper_physics``,
  ``original_adversary_reward``, ``original_team_reward``, ``curriculum``,
  ``terminate_on_success``, ``num_agent_neighbors``,
  ``num_landmark_neighbors``, ``benchmark_data``, rendering.

Documented departures that remain:

* float32 (JAX's default) instead of mpe2's float64 state: observations and
  rewards agree to about 1e-5 over a 25-step episode; a collision or forest
  test that sits within float32 rounding of its threshold could flip.
* simple_crypto's reward skips a listener's or Eve's term when *that*
  agent's message is all zeros in mpe2, but only when *all* messages are
  zero in JaxMARL. Equal whenever every message has a non-zero entry (always
  in discrete mode; in continuous mode unless an action is exactly 0).
* Resets are drawn with JAX's PRNG from mpe2's distributions, not with
  mpe2's numpy generator: a seed gives other initial states than
  ``make_mpe_env(...).reset(seed)`` (same distribution, not the same draw).

Auto-reset (explicit): MPE episodes here end only by the ``max_cycles``
time limit and all B copies start together at ``reset``, so they all end on
the same step. That ``step`` returns ``truncated`` all True, and, with
``autoreset=True`` (default), the *new* episodes' first observations in
``obs`` and the finished episodes' last observations in
``info["final_obs"]`` (as gymnasium's vector envs in "same-step" mode).
With ``autoreset=False`` it returns the last observations in ``obs`` and
the next ``step`` must be preceded by ``reset``.

Nothing imports this module (and jax) until an env with ``backend:
"jaxmarl"`` is built (envs/mpe.py) or you import it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

try:
    import jax
    import jax.numpy as jnp
    from jaxmarl.environments.mpe import (
        SimpleAdversaryMPE,
        SimpleCryptoMPE,
        SimpleMPE,
        SimplePushMPE,
        SimpleReferenceMPE,
        SimpleSpeakerListenerMPE,
        SimpleSpreadMPE,
        SimpleTagMPE,
        SimpleWorldCommMPE,
    )
    from jaxmarl.environments.mpe.default_params import CONTINUOUS_ACT, DISCRETE_ACT
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "rllib_maddpg.envs.jaxmarl_mpe needs JaxMARL (and jax): "
        "`pip install 'rllib-maddpg[jaxmarl]'` or `pip install jaxmarl==0.2.0`. "
        f"Import failed with: {err}"
    ) from err

from rllib_maddpg.envs.batched import OneCopyEnv
from rllib_maddpg.envs.mpe import MPE_SCENARIOS, make_mpe_env
from rllib_maddpg.envs.mpe_metrics import REPLICATION_RADIUS

__all__ = ["JAXMARL_ENV_IDS", "JaxMARLMPE", "JaxMARLMPEEnv", "state_from_mpe2"]

# scenario -> (JaxMARL registry id, class). The ids are those of jaxmarl.make.
JAXMARL_ENV_IDS = {
    "simple": ("MPE_simple_v3", SimpleMPE),
    "simple_adversary": ("MPE_simple_adversary_v3", SimpleAdversaryMPE),
    "simple_crypto": ("MPE_simple_crypto_v3", SimpleCryptoMPE),
    "simple_push": ("MPE_simple_push_v3", SimplePushMPE),
    "simple_reference": ("MPE_simple_reference_v3", SimpleReferenceMPE),
    "simple_speaker_listener": ("MPE_simple_speaker_listener_v4", SimpleSpeakerListenerMPE),
    "simple_spread": ("MPE_simple_spread_v3", SimpleSpreadMPE),
    "simple_tag": ("MPE_simple_tag_v3", SimpleTagMPE),
    "simple_world_comm": ("MPE_simple_world_comm_v3", SimpleWorldCommMPE),
}
assert tuple(JAXMARL_ENV_IDS) == MPE_SCENARIOS

# mpe2 keyword -> JaxMARL keyword(s), per scenario. Anything else is refused.
_KWARGS = {
    "simple": {},
    "simple_adversary": {"N": ("num_good_agents", "num_obs")},
    "simple_crypto": {},
    "simple_push": {},
    "simple_reference": {"local_ratio": ("local_ratio",)},
    "simple_speaker_listener": {},
    "simple_spread": {"N": ("num_agents", "num_landmarks"), "local_ratio": ("local_ratio",)},
    "simple_tag": {"num_good": ("num_good_agents",), "num_adversaries": ("num_adversaries",),
                   "num_obstacles": ("num_obs",)},
    "simple_world_comm": {"num_good": ("num_good_agents",),
                          "num_adversaries": ("num_adversaries",),
                          "num_obstacles": ("num_obs",), "num_food": ("num_food",),
                          "num_forests": ("num_forests",)},
}
# Values JaxMARL's observations only match mpe2's at (see the module docstring).
_REQUIRED = {"simple_tag": {"num_good": 1}, "simple_world_comm": {"num_good": 2}}
_COMMON_KWARGS = ("continuous_actions", "max_cycles")
_CRYPTO_ONE_HOT = np.eye(4, dtype=np.float32)[:2]  # mpe2's landmark colours in simple_crypto


class JaxMARLMPE:
    """B copies of an MPE scenario, stepped in one jitted JaxMARL call.

    Args:
        scenario: one of ``MPE_SCENARIOS``.
        num_envs: B.
        env_config: as for ``make_mpe_env`` (defaults ``continuous_actions=True``,
            ``max_cycles=25``); only the keys JaxMARL has are accepted.
        autoreset: see the module docstring.

    Attributes (as on the plugin's ``mpe/<scenario>`` env): ``possible_agents``
    (mpe2's order), ``observation_spaces``, ``action_spaces`` (per copy),
    ``action_simplex_segments``, ``max_cycles``, ``num_envs``.

    ``reset(seed)`` -> obs: ``{agent: float32 [B, obs_dim]}``.
    ``step(actions)`` with ``actions[agent]`` of shape ``[B, act_dim]`` (Box),
    ``[B]`` (Discrete) or ``[B, 2]`` (MultiDiscrete move+say) ->
    ``obs, rewards, terminated, truncated, info``: obs as above, rewards
    ``{agent: float32 [B]}``, terminated and truncated ``bool [B]`` (the same
    for every agent: MPE agents never end alone), info ``{"final_obs": obs
    dict or None}``. Dicts are in ``possible_agents`` order; arrays are numpy.
    """

    def __init__(
        self,
        scenario: str,
        num_envs: int,
        env_config: Mapping[str, Any] | None = None,
        autoreset: bool = True,
    ):
        if scenario not in JAXMARL_ENV_IDS:
            raise ValueError(f"Unknown MPE scenario {scenario!r}. Valid: {list(MPE_SCENARIOS)}.")
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs!r}.")
        config = {"continuous_actions": True, "max_cycles": 25, **dict(env_config or {})}
        jax_kwargs = _jaxmarl_kwargs(scenario, config)
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.max_cycles = int(config["max_cycles"])
        self.continuous = bool(config["continuous_actions"])
        self.autoreset = autoreset

        # The plugin's own env gives the spaces and the order we must match.
        reference = make_mpe_env(scenario, config)
        # mpe2's entity sizes (agents, then landmarks), for the paper's metrics:
        # JaxMARL's own radii differ where they play no part in the dynamics
        # (simple_push's landmarks: 0.2 there, 0.05 in mpe2).
        world = reference.par_env.unwrapped.world
        entity_sizes = tuple(float(e.size) for e in list(world.agents) + list(world.landmarks))
        self.possible_agents = list(reference.possible_agents)
        self.observation_spaces = dict(reference.observation_spaces)
        self.action_spaces = dict(reference.action_spaces)
        self.action_simplex_segments = dict(reference.action_simplex_segments)
        reference.close()

        # JAX's default float (float32, or float64 under jax_enable_x64) keys the
        # caches: JaxMARL's env holds arrays made at construction.
        real = str(jnp.zeros(()).dtype)
        self.jax_env = _jax_env(scenario, tuple(sorted(jax_kwargs.items())), self.continuous,
                                self.max_cycles, real)
        if sorted(self.jax_env.agents) != sorted(self.possible_agents):
            raise RuntimeError(
                f"JaxMARL's {scenario} agents {self.jax_env.agents} are not mpe2's "
                f"{self.possible_agents}: the installed jaxmarl differs from 0.2.0.")
        for agent in self.possible_agents:
            theirs = self.jax_env.observation_spaces[agent].shape
            ours = self.observation_spaces[agent].shape
            if tuple(theirs) != tuple(ours):
                raise RuntimeError(
                    f"JaxMARL's {scenario} observation of {agent} has shape {theirs}, "
                    f"mpe2's {ours}: the installed jaxmarl differs from 0.2.0.")

        # Actions are packed and observations concatenated inside the jitted
        # step: one host->device copy per agent, one device->host copy per step.
        # The jitted functions are shared by every JaxMARLMPE of the same
        # scenario, settings and B (one compile per process, not per instance:
        # RLlib builds one-copy envs per sub-env, see JaxMARLMPEEnv).
        self._host_dtypes = {a: (np.float32 if isinstance(self.action_spaces[a], gym.spaces.Box)
                                 else np.int32) for a in self.possible_agents}
        sizes = [int(np.prod(self.observation_spaces[a].shape)) for a in self.possible_agents]
        self._obs_slices = dict(zip(self.possible_agents, (
            slice(int(start), int(start) + size)
            for start, size in zip(np.cumsum([0] + sizes[:-1]), sizes))))
        self._reset_fn, self._step_fn = _kernels(
            scenario, self.jax_env, tuple(self.possible_agents),
            tuple((a, _space_key(self.action_spaces[a])) for a in self.possible_agents),
            entity_sizes, self.num_envs, real)
        self._metrics = _EPISODE_METRICS.get(scenario)
        self._metric_sums: dict[str, np.ndarray] = {}
        self._last_metrics: dict[str, np.ndarray] | None = None
        self._key = None
        self._state = None
        self._t = 0
        self._needs_reset = True

    # ------------------------------------------------------------- public API

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None or self._key is None:
            self._key = jax.random.PRNGKey(0 if seed is None else int(seed))
        self._key, sub = jax.random.split(self._key)
        obs, self._state = self._reset_fn(jax.random.split(sub, self.num_envs))
        self._start_episode()
        return self._split_obs(np.array(obs))

    def set_state(self, state) -> dict[str, np.ndarray]:
        """Starts the B copies from `state` (a JaxMARL state with a leading
        batch axis, e.g. stacked ``state_from_mpe2`` results); returns the obs."""
        self._state = state
        self._start_episode()
        obs = jax.vmap(self.jax_env.get_obs)(state)
        return self._split_obs(np.array(_concat_obs(obs, self.possible_agents, self.num_envs)))

    def episode_metrics(self) -> list[dict[str, float]]:
        """The paper's task metrics (envs/mpe_metrics.py, same names and
        definitions) of the B episodes that ended at the last step, one dict per
        copy; empty dicts for scenarios without metrics. Read after the step that
        returned truncated (with autoreset the copies have already restarted)."""
        if self._last_metrics is None:
            raise RuntimeError("episode_metrics() before any episode ended.")
        names = list(self._last_metrics)
        return [{name: float(self._last_metrics[name][b]) for name in names}
                for b in range(self.num_envs)]

    def step(self, actions: Mapping[str, Any]):
        if self._needs_reset:
            raise RuntimeError("JaxMARLMPE.step before reset (or after an episode ended "
                               "with autoreset=False): call reset() first.")
        host = {a: np.asarray(actions[a], self._host_dtypes[a]) for a in self.possible_agents}
        obs, self._state, rewards, per_step, last = self._step_fn(self._state, host)
        obs, rewards, per_step, last = jax.device_get((obs, rewards, per_step, last))
        obs, rewards = np.array(obs), np.array(rewards)
        for name, value in per_step.items():
            self._metric_sums[name] += value
        self._t += 1
        ended = self._t >= self.max_cycles
        if ended:
            self._last_metrics = (self._metrics.result(self._metric_sums, last, self._t)
                                  if self._metrics else {})
        truncated = np.full(self.num_envs, ended)
        terminated = np.zeros(self.num_envs, dtype=bool)
        rewards = {a: rewards[:, i] for i, a in enumerate(self.possible_agents)}
        obs = self._split_obs(obs)
        info = {"final_obs": None}
        if ended:
            if self.autoreset:
                info["final_obs"] = obs
                obs = self.reset()
            else:
                self._needs_reset = True
        return obs, rewards, terminated, truncated, info

    # ------------------------------------------------------------- internals

    def _start_episode(self) -> None:
        self._t = 0
        self._needs_reset = False
        names = self._metrics.summed if self._metrics else ()
        self._metric_sums = {name: np.zeros(self.num_envs) for name in names}

    def _split_obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[:, self._obs_slices[a]] for a in self.possible_agents}


class JaxMARLMPEEnv(OneCopyEnv):
    """One copy of a JaxMARL-stepped MPE scenario as an RLlib MultiAgentEnv:
    what ``mpe/<scenario>`` with ``env_config={"backend": "jaxmarl"}`` builds
    (envs/batched.py). Agents, spaces, ``action_simplex_segments`` and
    ``strict_lockstep`` are the mpe2 env's; ``batched(num_envs, seed)`` is the
    ``JaxMARLMPE`` the lockstep sampler steps.
    """

    def __init__(self, scenario: str, env_config: Mapping[str, Any] | None = None):
        self._scenario, self._config = scenario, dict(env_config or {})
        super().__init__(JaxMARLMPE(scenario, 1, self._config))
        self.action_simplex_segments = dict(self._one.action_simplex_segments)
        self.max_cycles = self._one.max_cycles

    def batched(self, num_envs: int, seed: int | None = None) -> "JaxMARLMPE":
        """B = num_envs copies of this env (same scenario and settings), auto-resetting;
        reset(seed) starts them (the lockstep sampler calls it with `seed`)."""
        return JaxMARLMPE(self._scenario, num_envs, self._config)  # the sampler resets it (seed)


def state_from_mpe2(scenario: str, world, max_cycles: int = 25):
    """The JaxMARL state (one copy) equal to an mpe2 world's state.

    `world` is mpe2's ``raw_env.world`` (e.g. ``make_mpe_env(...).par_env.
    unwrapped.world`` after ``reset``). Stack copies with
    ``jax.tree.map(lambda *x: jnp.stack(x), *states)`` for ``set_state``.
    """
    from jaxmarl.environments.mpe.simple import State
    from jaxmarl.environments.mpe.simple_crypto import CryptoState

    jax_order = _jax_agent_order(scenario, [a.name for a in world.agents])
    by_name = {a.name: a for a in world.agents}
    agents = [by_name[name] for name in jax_order]
    entities = agents + list(world.landmarks)
    real = jnp.zeros(()).dtype  # JAX's default: float32, or float64 under jax_enable_x64
    p_pos = jnp.asarray(np.array([e.state.p_pos for e in entities]), real)
    p_vel = jnp.asarray(np.array([e.state.p_vel for e in entities]), real)
    c = jnp.asarray(np.array([a.state.c for a in agents]).reshape(len(agents), world.dim_c), real)
    common = {"p_pos": p_pos, "p_vel": p_vel, "c": c, "done": jnp.array(False),
              "step": jnp.array(0)}
    landmarks = list(world.landmarks)

    def index(landmark):
        return next(i for i, lm in enumerate(landmarks) if lm is landmark)

    if scenario == "simple_crypto":
        return CryptoState(**common,
                           goal_colour=jnp.asarray(world.agents[0].goal_a.color, real),
                           private_key=jnp.asarray(world.agents[2].key, real))
    if scenario in ("simple_adversary", "simple_push"):
        return State(**common, goal=jnp.array(index(world.agents[0].goal_a)))
    if scenario == "simple_speaker_listener":
        return State(**common, goal=jnp.array(index(world.agents[0].goal_b)))
    if scenario == "simple_reference":
        # JaxMARL's goal[j] is the landmark agent j must reach; mpe2 stores it on
        # the *other* agent, the one that sees its colour: agents[i].goal_b.
        return State(**common, goal=jnp.array([index(world.agents[1].goal_b),
                                               index(world.agents[0].goal_b)]))
    return State(**common)


# ------------------------------------------------------------------ helpers


def _jax_agent_order(scenario: str, mpe2_order: list[str]) -> list[str]:
    if scenario == "simple_crypto":
        return ["eve_0", "alice_0", "bob_0"]  # JaxMARL's order; mpe2's is eve, bob, alice
    return list(mpe2_order)


def _jaxmarl_kwargs(scenario: str, config: Mapping[str, Any]) -> dict:
    mapping = _KWARGS[scenario]
    unknown = sorted(k for k in config if k not in mapping and k not in _COMMON_KWARGS)
    if unknown:
        raise ValueError(
            f"env_config for the JaxMARL route of {scenario!r} has key(s) {unknown} that "
            f"JaxMARL's MPE does not have (or that this adapter does not map); accepted: "
            f"{sorted(list(mapping) + list(_COMMON_KWARGS))}. Use the mpe2 env "
            f"(`mpe/{scenario}`) for them.")
    for key, value in _REQUIRED.get(scenario, {}).items():
        if key in config and config[key] != value:
            raise ValueError(
                f"The JaxMARL route of {scenario!r} supports only {key}={value}: JaxMARL's "
                f"observations then differ from mpe2's (they keep the velocity of only the "
                f"last other agent(s)). Use the mpe2 env (`mpe/{scenario}`).")
    kwargs = {}
    for key, value in config.items():
        for jax_key in mapping.get(key, ()):
            kwargs[jax_key] = value
    return kwargs


def _action_packer(key: tuple):
    """Turns a batch of the plugin's actions into the batch JaxMARL takes (traced)."""
    kind = key[0]
    if kind == "box":  # clipped, as the plugin's mpe2 envs do
        low, high = key[1], key[2]
        return lambda a: jnp.clip(a, low, high)
    if kind == "multi_discrete":  # move + 5 * say
        strides = np.concatenate(([1], np.cumprod(key[1][:-1]))).astype(np.int32)
        return lambda a: a @ jnp.asarray(strides)
    return lambda a: a.reshape(-1)


@functools.lru_cache(maxsize=None)
def _jax_env(scenario: str, jax_kwargs: tuple, continuous: bool, max_cycles: int, real: str):
    cls = JAXMARL_ENV_IDS[scenario][1]
    return cls(action_type=CONTINUOUS_ACT if continuous else DISCRETE_ACT,
               max_steps=max_cycles, **dict(jax_kwargs))


def _space_key(space: gym.Space) -> tuple:
    """A hashable description of an action space, for the kernel cache."""
    if isinstance(space, gym.spaces.Box):
        return ("box", float(np.min(space.low)), float(np.max(space.high)))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return ("multi_discrete", tuple(int(n) for n in space.nvec))
    if isinstance(space, gym.spaces.Discrete):
        return ("discrete", int(space.n))
    raise TypeError(f"Unsupported action space {space!r}.")


@functools.lru_cache(maxsize=None)
def _kernels(scenario: str, env, agents: tuple, action_keys: tuple, sizes: tuple,
             num_envs: int, real: str):
    """The jitted (reset, step) of B copies; cached so that equal envs compile once."""
    packers = {a: _action_packer(key) for a, key in action_keys}
    metrics = _EPISODE_METRICS.get(scenario)

    def reset_one(key):
        key, sub = jax.random.split(key)
        _, state = env.reset(key)
        if scenario in ("simple_tag", "simple_world_comm"):
            # mpe2 draws these landmarks from U(-0.9, 0.9); JaxMARL from U(-1, 1).
            landmarks = jax.random.uniform(sub, (env.num_landmarks, 2), minval=-0.9, maxval=0.9)
            state = state.replace(p_pos=state.p_pos.at[env.num_agents:].set(landmarks))
        if scenario == "simple_crypto":
            k_goal, k_key = jax.random.split(sub)
            one_hot = jnp.asarray(_CRYPTO_ONE_HOT)
            state = state.replace(
                goal_colour=one_hot[jax.random.randint(k_goal, (), 0, 2)],
                private_key=one_hot[jax.random.randint(k_key, (), 0, 2)])
        return env.get_obs(state), state

    def reset_batch(keys):
        obs, state = jax.vmap(reset_one)(keys)
        return _concat_obs(obs, agents, num_envs), state

    def step_batch(state, actions):
        actions = {a: packers[a](actions[a]) for a in agents}
        # MPE has no motor or message noise by default: the step key is unused.
        keys = jnp.zeros((num_envs, 2), dtype=jnp.uint32)
        obs, state, rewards, _, _ = jax.vmap(env.step_env)(keys, state, actions)
        rewards = jnp.stack([rewards[a] for a in agents], axis=1)
        per_step, last = jax.vmap(metrics.terms(env, jnp.asarray(sizes)))(state) if metrics else ({}, {})
        return _concat_obs(obs, agents, num_envs), state, rewards.astype(jnp.float32), per_step, last

    return jax.jit(reset_batch), jax.jit(step_batch)


def _concat_obs(obs, agents, num_envs: int):
    """[B, sum of obs dims] in the given (mpe2's) agent order (split on the host)."""
    return jnp.concatenate([obs[a].reshape(num_envs, -1).astype(jnp.float32) for a in agents], axis=1)


# ------------------------------------------------------- the paper's metrics
#
# envs/mpe_metrics.py computes them from an mpe2 world, one copy at a time;
# here the same definitions are computed from JaxMARL's state inside the jitted
# step (vmapped over copies), with mpe2's entity sizes. `terms(env, size)(state)`
# gives, after a step, the per-step terms the episode sums (`summed`) and the
# values read at the last step; `result` turns an ended episode's sums and last values into the
# metrics named as in mpe_metrics.py. tests/unit/test_jaxmarl_mpe.py checks
# them against mpe_metrics on the same episodes.


def _distance(p, q):
    return jnp.sqrt(jnp.sum(jnp.square(p - q), axis=-1))


class _SpreadMetrics:
    summed = ("distance_sum", "collisions")

    @staticmethod
    def terms(env, size):
        n = env.num_agents
        i, j = np.triu_indices(n, 1)

        def fn(state):
            agents, landmarks = state.p_pos[:n], state.p_pos[n:]
            to_landmarks = _distance(landmarks[:, None], agents[None])  # [L, N]
            apart = _distance(agents[i], agents[j])
            collisions = jnp.sum(apart < size[i] + size[j])
            return {"distance_sum": to_landmarks.min(1).mean(), "collisions": collisions}, {}
        return fn

    @staticmethod
    def result(sums, last, steps):
        return {"mean_landmark_distance": sums["distance_sum"] / max(steps, 1),
                "collisions": sums["collisions"]}


class _AdversaryMetrics:
    summed = ()

    @staticmethod
    def terms(env, size):
        n, n_adv = env.num_agents, env.num_adversaries  # adversaries first, as in mpe2

        def fn(state):
            goal = n + state.goal
            to_goal = _distance(state.p_pos[:n], state.p_pos[goal])
            return {}, {"good_distance": to_goal[n_adv:].min(),
                        "adversary_distance": to_goal[:n_adv].min(),
                        "radius": 2 * size[goal]}
        return fn

    @staticmethod
    def result(sums, last, steps):
        good, bad = last["good_distance"], last["adversary_distance"]
        good_success = (good < last["radius"]).astype(float)
        adversary_success = (bad < last["radius"]).astype(float)
        return {"good_distance": good, "adversary_distance": bad, "good_success": good_success,
                "adversary_success": adversary_success,
                "success_difference": good_success - adversary_success,
                "good_success_r04": (good < REPLICATION_RADIUS).astype(float),
                "adversary_success_r04": (bad < REPLICATION_RADIUS).astype(float)}


class _SpeakerListenerMetrics:
    summed = ()

    @staticmethod
    def terms(env, size):
        n = env.num_agents  # speaker_0, listener_0

        def fn(state):
            goal = n + state.goal
            return {}, {"target_distance": _distance(state.p_pos[1], state.p_pos[goal]),
                        "touching": size[1] + size[goal]}
        return fn

    @staticmethod
    def result(sums, last, steps):
        d = last["target_distance"]
        return {"target_distance": d, "target_reached": (d < last["touching"]).astype(float),
                "target_reached_r04": (d < REPLICATION_RADIUS).astype(float)}


class _TagMetrics:
    summed = ("touches",)

    @staticmethod
    def terms(env, size):
        n, n_adv = env.num_agents, env.num_adversaries  # predators first, as in mpe2

        def fn(state):
            predators, prey = state.p_pos[:n_adv], state.p_pos[n_adv:n]
            apart = _distance(predators[:, None], prey[None])
            touching = apart < size[:n_adv, None] + size[None, n_adv:n]
            return {"touches": jnp.sum(touching)}, {}
        return fn

    @staticmethod
    def result(sums, last, steps):
        return {"touches": sums["touches"]}


class _PushMetrics:
    summed = ("adversary_frames", "agent_frames")

    @staticmethod
    def terms(env, size):
        n, n_adv = env.num_agents, env.num_adversaries

        def fn(state):
            goal = n + state.goal
            touching = _distance(state.p_pos[:n], state.p_pos[goal]) < size[:n] + size[goal]
            return {"adversary_frames": jnp.any(touching[:n_adv]),
                    "agent_frames": jnp.any(touching[n_adv:])}, {}
        return fn

    @staticmethod
    def result(sums, last, steps):
        return {"adversary_on_goal_frames": sums["adversary_frames"],
                "agent_on_goal_frames": sums["agent_frames"]}


class _CryptoMetrics:
    summed = ()

    @staticmethod
    def terms(env, size):
        def fn(state):  # JaxMARL's order: eve_0, alice_0, bob_0
            goal = jnp.argmax(state.goal_colour)

            def decoded(c):
                return jnp.any(c != 0) & (jnp.argmax(c) == goal)
            return {}, {"eve_success": decoded(state.c[0]), "bob_success": decoded(state.c[2])}
        return fn

    @staticmethod
    def result(sums, last, steps):
        return {"bob_success": last["bob_success"].astype(float),
                "eve_success": last["eve_success"].astype(float)}


_EPISODE_METRICS = {
    "simple_spread": _SpreadMetrics,
    "simple_adversary": _AdversaryMetrics,
    "simple_speaker_listener": _SpeakerListenerMetrics,
    "simple_tag": _TagMetrics,
    "simple_push": _PushMetrics,
    "simple_crypto": _CryptoMetrics,
}
