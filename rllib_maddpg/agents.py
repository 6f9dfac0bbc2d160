"""Reading the agents from an env: who they are, in which order, with which spaces and policies.

MADDPG's critic Q_i(x, a_1..a_N) concatenates every agent's observation and
action in one fixed order, the joint agent order. `resolve_agents` builds
the env once (`probe_env`), reads its agents and spaces, maps each agent
to a policy (one per agent unless the user maps several to one), and fills
the config with the result: `policies`, a fixed `policy_mapping_fn`, and
`config._maddpg_agents`, the joint order as `joint_batch.AgentSpec`s that
every policy, sampler and learner reads.

Envs that MADDPG cannot take are refused here, each with its own message
naming the fix, before anything deeper could fail on them.
"""

from typing import Any, Dict, List

import gymnasium as gym

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.policy.policy import PolicySpec
from ray.rllib.policy.sample_batch import DEFAULT_POLICY_ID

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core.actions import make_action_head
from rllib_maddpg.envs import env_agent_ids
from rllib_maddpg.envs.spaces import flat_obs_dim
from rllib_maddpg.ray_compat import env_id_and_creator


class AgentToPolicy:
    """policy_mapping_fn of MADDPG: a fixed agent -> policy table (picklable)."""

    def __init__(self, mapping: Dict[Any, str]):
        self.mapping = dict(mapping)

    def __call__(self, agent_id, episode=None, worker=None, **kwargs) -> str:
        return self.mapping[agent_id]


def probe_env(config: AlgorithmConfig):
    """Builds the env once: (agent ids in joint order, obs spaces, action spaces,
    simplex segments, whether the env declares strict lockstep)."""
    _, creator = env_id_and_creator(config.env, config)
    env = creator(EnvContext(config.env_config, worker_index=0, num_workers=0))
    try:
        refuse_unsupported_env(env, config.env)
        agent_ids = env_agent_ids(env)
        if not agent_ids:
            raise ValueError(
                f"the env {config.env!r} names no agents: set self.possible_agents (the "
                "joint agent order) in its constructor."
            )
        obs_spaces = {a: env.get_observation_space(a) for a in agent_ids}
        act_spaces = {a: env.get_action_space(a) for a in agent_ids}
        segments = dict(getattr(env, "action_simplex_segments", None) or {})
        strict = bool(getattr(env, "strict_lockstep", False))
    finally:
        close = getattr(env, "close", None)  # not every env has one (VMAS's VectorEnvWrapper)
        if callable(close):
            close()
    return agent_ids, obs_spaces, act_spaces, segments, strict


def refuse_unsupported_env(env, name) -> None:
    """A clear error for each kind of env MADDPG cannot take, naming the fix."""
    if isinstance(env, MultiAgentEnv):
        return
    kind = type(env).__name__
    try:
        from pettingzoo import AECEnv, ParallelEnv
    except ImportError:  # pettingzoo is a dependency; stay clear if it is broken
        AECEnv = ParallelEnv = ()
    if AECEnv and isinstance(env, AECEnv):
        fix = ("it is a PettingZoo AEC (turn-based) env: build its parallel version "
               "(`parallel_env(...)`, or `pettingzoo.utils.conversions.aec_to_parallel(env)`) "
               "and register it with rllib_maddpg.register_pettingzoo_env")
    elif ParallelEnv and isinstance(env, ParallelEnv):
        fix = ("it is a PettingZoo ParallelEnv registered as it is: register it with "
               "rllib_maddpg.register_pettingzoo_env(name, creator) instead of "
               "ray.tune.register_env")
    elif hasattr(env, "vector_reset") or hasattr(env, "num_envs"):
        fix = ("it is a vector env (several copies of a single-agent env): MADDPG needs "
               "one multi-agent env; give the env itself (a MultiAgentEnv or a PettingZoo "
               "parallel env) and set num_envs_per_env_runner for copies")
    elif isinstance(env, gym.Env):
        fix = ("it is a single-agent gymnasium env: MADDPG needs several agents; use an RLlib "
               "MultiAgentEnv (e.g. ray.rllib.examples.envs.classes.multi_agent."
               "make_multi_agent) or a PettingZoo parallel env")
    else:
        fix = "use an RLlib MultiAgentEnv or a PettingZoo parallel env"
    raise ValueError(
        f"MADDPG needs a multi-agent env, but {name!r} built a {kind}: {fix}. MPE "
        "scenarios are registered as `mpe/<scenario>`."
    )


def resolve_agents(config) -> None:
    """Fills the joint agent order and each agent's policy (one per agent unless mapped otherwise) from the env."""
    env_key = (repr(config.env), repr(sorted(dict(config.env_config).items())))
    if config._maddpg_probe is None or config._maddpg_probe[0] != env_key:
        config._maddpg_probe = (env_key, probe_env(config))
    agent_ids, obs_spaces, act_spaces, segments, env_strict = config._maddpg_probe[1]
    # Masked critics unless the run (or, left at None, the env) asks for strict lockstep.
    strict = env_strict if config.strict_lockstep is None else config.strict_lockstep
    config._maddpg_masked = not strict

    table = config.policy_mapping_fn
    if isinstance(table, dict):
        # A YAML-friendly mapping {agent id: policy id}: agents it leaves out
        # keep their own policy; the policies are the ones it names.
        unknown = sorted(set(map(str, table)) - set(map(str, agent_ids)))
        if unknown:
            raise ValueError(
                f"policy_mapping_fn names agents {unknown} that the env does not have "
                f"(agents: {agent_ids})."
            )
        by_name = {str(k): str(v) for k, v in table.items()}
        config.policy_mapping_fn = AgentToPolicy(
            {a: by_name.get(str(a), str(a)) for a in agent_ids})
        if set(config.policies) == {DEFAULT_POLICY_ID}:
            config.policies = {pid: PolicySpec() for pid in config.policy_mapping_fn.mapping.values()}
    user_policies = set(config.policies) != {DEFAULT_POLICY_ID}
    mapping = {}
    for agent_id in agent_ids:
        if user_policies and config.policy_mapping_fn is not AlgorithmConfig.DEFAULT_POLICY_MAPPING_FN:
            mapping[agent_id] = config.policy_mapping_fn(agent_id, None, worker=None)
        else:
            mapping[agent_id] = str(agent_id)

    specs = {}
    for agent_id, policy_id in mapping.items():
        given = _as_policy_spec(config.policies.get(policy_id)) if user_policies else PolicySpec()
        if user_policies and policy_id not in config.policies:
            raise ValueError(
                f"agent {agent_id!r} maps to policy {policy_id!r}, which is not in "
                f"multi_agent(policies=...) {sorted(config.policies)}: add it, or leave "
                "`policies` unset to get one policy per agent."
            )
        # policy_class None: RLlib fills in the algorithm's default policy class.
        specs[policy_id] = PolicySpec(
            policy_class=given.policy_class,
            observation_space=given.observation_space or obs_spaces[agent_id],
            action_space=given.action_space or act_spaces[agent_id],
            config=given.config,
        )
    if user_policies and set(config.policies) - set(specs):
        raise ValueError(
            f"policies {sorted(set(config.policies) - set(specs))} act for no agent of "
            f"the env (agents: {agent_ids}): remove them."
        )
    for key in ("use_local_critic", "infer_other_policies"):
        value = getattr(config, key)
        unknown = sorted(set(value) - set(specs)) if isinstance(value, (list, tuple)) else []
        if unknown:
            raise ValueError(
                f"{key} names unknown policies {unknown}; the policies are {sorted(specs)}."
            )
    _check_shared_spaces(mapping, obs_spaces, act_spaces)
    config.policies = specs
    config.policy_mapping_fn = AgentToPolicy(mapping)
    config.policies_to_train = None
    config._maddpg_agents = tuple(
        _agent_spec(agent_id, mapping[agent_id], specs[mapping[agent_id]],
                    segments.get(agent_id), vars(config))
        for agent_id in agent_ids
    )
    _validate_ensembles(config)
    _validate_sharing(config)
    _validate_masking(config)


def _validate_masking(config) -> None:
    """Masked critics (agents that come and go) and what they cannot combine with."""
    if not config._maddpg_masked:
        return
    if not config.use_lockstep_sampler:
        # RLlib's generic sampler gives no rows for absent agents; postprocessing
        # refuses misaligned agents (env_checks.LOCKSTEP_FIX says so).
        return
    if config.data_parallel_learners > 1:
        raise ValueError(
            "data_parallel_learners > 1 averages unmasked shard losses; with agents that "
            "come and go (strict_lockstep False) use the local learner or "
            "per_agent_learners, or set strict_lockstep=True if every agent acts every step."
        )


def _validate_sharing(config) -> None:
    """Shared policies (several agents mapped to one) and what they cannot combine with."""
    groups: Dict[str, List] = {}
    for agent in config._maddpg_agents:
        groups.setdefault(agent.policy_id, []).append(agent.agent_id)
    shared = {pid: ids for pid, ids in groups.items() if len(ids) > 1}
    if not shared:
        return
    if not config.use_lockstep_sampler:
        raise ValueError(
            f"policies {sorted(shared)} are shared by several agents ({shared}); shared "
            "policies need MADDPG's lockstep sampler: set use_lockstep_sampler=True."
        )
    for pid in shared:
        spec = config.policies[pid]
        merged = {**vars(config), **(spec.config or {})}
        if int(merged["num_subpolicies"]) > 1:
            raise ValueError(
                f"policy {pid!r} is shared by agents {shared[pid]} and has a policy "
                "ensemble (num_subpolicies > 1): use one or the other."
            )
        infer = config.infer_other_policies
        if infer is True or (isinstance(infer, (list, tuple)) and pid in infer):
            raise ValueError(
                f"policy {pid!r} is shared by agents {shared[pid]}: policy inference "
                "(infer_other_policies) is for unshared policies; leave it out for "
                f"{pid!r} (e.g. infer_other_policies=[<unshared policy ids>])."
            )


def _validate_ensembles(config) -> None:
    sizes = {a.policy_id: a.num_subpolicies for a in config._maddpg_agents}
    if max(sizes.values()) > 1 and not config.use_lockstep_sampler:
        raise ValueError(
            "policy ensembles (num_subpolicies > 1) draw a sub-policy per episode in "
            "MADDPG's lockstep sampler: set use_lockstep_sampler=True."
        )
    for group in config.ensemble_shared_draw:
        unknown = sorted(set(group) - set(sizes))
        if unknown:
            raise ValueError(
                f"ensemble_shared_draw names unknown policies {unknown}; the policies "
                f"are {sorted(sizes)}."
            )
        if len({sizes[p] for p in group}) > 1:
            raise ValueError(
                f"ensemble_shared_draw group {list(group)} mixes ensemble sizes "
                f"{ {p: sizes[p] for p in group} }: give its policies the same num_subpolicies."
            )
    fixed = config.subpolicy_for_acting
    ensembles = {p: k for p, k in sizes.items() if k > 1}
    if fixed is not None and ensembles and fixed >= min(ensembles.values()):
        raise ValueError(
            f"subpolicy_for_acting={fixed}, but the ensembles {ensembles} have fewer "
            "sub-policies (indices count from 0)."
        )


def _agent_spec(agent_id, policy_id: str, spec: PolicySpec, simplex_segments, config) -> jb.AgentSpec:
    config = {**config, **(spec.config or {})}  # a PolicySpec's config overrides
    head = make_action_head(spec.action_space, simplex_segments, config)
    return jb.AgentSpec(
        agent_id=agent_id,
        policy_id=policy_id,
        obs_dim=flat_obs_dim(spec.observation_space, agent_id),
        action_dim=head.critic_dim,
        simplex_segments=tuple(simplex_segments) if simplex_segments else None,
        categorical_segments=tuple(head.segments) if hasattr(head, "segments") else None,
        num_subpolicies=int(config["num_subpolicies"]),
    )


def _check_shared_spaces(mapping: Dict[Any, str], obs_spaces: Dict, act_spaces: Dict) -> None:
    """Agents that share a policy share its actor and critic: their spaces must be the same."""
    first: Dict[str, Any] = {}
    for agent_id, policy_id in mapping.items():
        if policy_id not in first:
            first[policy_id] = agent_id
            continue
        other = first[policy_id]
        for kind, spaces in (("observation", obs_spaces), ("action", act_spaces)):
            if spaces[agent_id] != spaces[other]:
                raise ValueError(
                    f"agents {other!r} and {agent_id!r} share policy {policy_id!r} but have "
                    f"different {kind} spaces ({spaces[other]} and {spaces[agent_id]}): only "
                    "agents with the same spaces can share a policy; map them to different "
                    "policies (policy_mapping_fn)."
                )


def _as_policy_spec(spec) -> PolicySpec:
    if isinstance(spec, PolicySpec):
        return spec
    if isinstance(spec, dict):  # PolicySpec.get_state(), as AlgorithmConfig.to_dict writes it
        return PolicySpec.from_state(spec)
    if isinstance(spec, (list, tuple)):
        return PolicySpec(*spec)
    return PolicySpec()
