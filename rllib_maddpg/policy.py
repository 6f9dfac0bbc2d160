"""MADDPGTorchPolicy: one agent's actor, critic and optimizers, wired to RLlib.

MADDPG itself is in core/ (losses, the update, the networks, acting, the
joint row schema); this class connects it to RLlib's old-stack Policy API:

- `compute_actions_from_input_dict`: decentralized execution, a_i from o_i
  only, plus the action as the critic sees it (CRITIC_ACTION);
- `postprocess_trajectory`: attaches every agent's columns (joint_batch);
- `learn_on_batch`: one MADDPG update of agent i (core/update.py) on a joint
  minibatch that already carries the target actions a'_j.
"""

import functools
from typing import Dict, List, Optional

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.policy.sample_batch import SampleBatch
from ray.rllib.policy.torch_policy_v2 import TorchPolicyV2
from ray.rllib.utils.annotations import override
from ray.rllib.utils.spaces.space_utils import unbatch

from rllib_maddpg import joint_batch
from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from rllib_maddpg.config import MADDPGConfig
from rllib_maddpg.core.actions import make_action_head
from rllib_maddpg.envs.spaces import obs_flattener
from rllib_maddpg.core.networks import PolicyApproximator
from rllib_maddpg.models import MADDPGModel


@functools.lru_cache(maxsize=1)
def _config_defaults() -> Dict:
    return MADDPGConfig().to_dict()


class MADDPGTorchPolicy(TorchPolicyV2):
    """Agent i of MADDPG (Lowe et al. 2017, Algorithm 1), in PyTorch.

    The policy's config carries the joint agent order (`_maddpg_agents`, a
    list of `joint_batch.AgentSpec`) and its own policy id; from them it
    knows the agents it acts for and the sizes of the critic's inputs.

    Usually one agent i. When several agents are mapped to this policy it is
    shared by that group G: one actor mu_G(o_i, id_i) and one critic
    Q_G(x, a_1..a_N, id_i) for all i in G, where id_i is the one-hot of i's
    position in G (`shared_policy_agent_id`; otherwise no id). Each agent
    still acts on its own observation; the critic learns from every agent of
    G on each minibatch (core/update.py).
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: Dict):
        # Keys added since a checkpoint was written take their defaults.
        config = {**_config_defaults(), **config}
        # This process's torch threads (config key torch_num_threads; its
        # docstring in config.py says why the default is 1).
        if config["torch_num_threads"] is not None:
            torch.set_num_threads(int(config["torch_num_threads"]))
        self.agents: List[jb.AgentSpec] = list(config["_maddpg_agents"])
        policy_id = config["__policy_id"]
        # The agents this policy acts for (joint indices): agent i, or a group G.
        self.group = [k for k, agent in enumerate(self.agents) if agent.policy_id == policy_id]
        self.agent_index = self.group[0]
        # id_i, the one-hot of agent i's position in G, goes into the shared
        # actor's and critic's inputs (none for a policy of one agent).
        self.agent_id_dim = (len(self.group)
                             if config["shared_policy_agent_id"] and len(self.group) > 1 else 0)
        self._position_in_group = np.full(len(self.agents), -1)  # joint index -> position in G
        self._position_in_group[self.group] = np.arange(len(self.group))
        use_local = config["use_local_critic"]
        self.use_local_critic = (
            bool(use_local) if isinstance(use_local, bool) else policy_id in use_local
        )
        # Agents that come and go (config key strict_lockstep): the critic
        # also reads alive flags, and absent rows are masked (core/update.py).
        self.masked = bool(config["_maddpg_masked"])
        # The agents whose observations and actions agent i's critic sees.
        self.critic_agents = self.critic_agents_of(self.agent_index)
        infer = config["infer_other_policies"]
        infer = bool(infer) if isinstance(infer, bool) else policy_id in infer
        # Policy inference: the other agents whose policies agent i approximates.
        self.inferred_agents = [k for k in self.critic_agents if infer and k != self.agent_index]
        me = self.agents[self.agent_index]
        self.action_head = make_action_head(action_space, me.simplex_segments, config)
        # Observations as the env gives them (a Box of any shape, Discrete,
        # Dict, ...) become the actor's flat input (envs/spaces.py); RLlib
        # hands the policy the space after its preprocessors and keeps the
        # env's as `original_space`.
        env_space = getattr(observation_space, "original_space", observation_space)
        self.flatten_obs = obs_flattener(env_space)
        # Policy ensemble (paper section 4.3): K sub-policies, one critic.
        self.num_subpolicies = config["num_subpolicies"]

        self._building = True  # RLlib's dummy batch has no meaningful agent indices
        super().__init__(observation_space, action_space, config)

        # MADDPG never reads previous actions/rewards: do not collect them.
        for key in (SampleBatch.PREV_ACTIONS, SampleBatch.PREV_REWARDS):
            self.view_requirements.pop(key, None)
        self._initialize_loss_from_dummy_batch()
        self._building = False
        # The optimizers by what they train (core/update.py reads them by name).
        self.optimizers = dict(zip(("actor", "critic", "inference"), self._optimizers))

    def critic_agents_of(self, i: int) -> List[int]:
        """The agents (joint indices) whose o and a agent i's critic sees: all, or i alone."""
        return [i] if self.use_local_critic else list(range(len(self.agents)))

    def with_agent_id(self, x: torch.Tensor, agents) -> torch.Tensor:
        """x with id_i appended to each row (row b is agent `agents[b]`, a joint index,
        or one int for all rows); x itself when the policy has no agent ids."""
        if not self.agent_id_dim:
            return x
        return torch.cat([x, self.agent_id_one_hot(agents, x.shape[0]).to(x.device, x.dtype)], dim=-1)

    def agent_id_one_hot(self, agents, rows: int) -> torch.Tensor:
        """id_i of each of `rows` rows: [rows, |G|] one-hot of the agent's position in G."""
        if agents is None:
            if not self._building:
                raise ValueError(
                    f"policy {self.config['__policy_id']!r} is shared by agents "
                    f"{[self.agents[k].agent_id for k in self.group]} with agent ids "
                    "(shared_policy_agent_id): say which agent acts, e.g. "
                    "compute_single_action(input_dict={'obs': obs, 'agent_index': k}) with "
                    "k the agent's index in the joint agent order."
                )
            agents = self.group[0]
        agents = np.broadcast_to(np.asarray(agents, dtype=np.int64), (rows,))
        valid = (agents >= 0) & (agents < len(self.agents))
        positions = np.where(valid, self._position_in_group[np.where(valid, agents, 0)], -1)
        if (positions < 0).any():
            if not self._building:
                raise ValueError(
                    f"policy {self.config['__policy_id']!r} acts for the agents at joint "
                    f"indices {self.group}, not {sorted(set(np.asarray(agents).ravel().tolist()))}."
                )
            positions = np.zeros_like(positions)
        return torch.nn.functional.one_hot(torch.from_numpy(positions), self.agent_id_dim).float()

    # --- networks and optimizers -------------------------------------------

    @override(TorchPolicyV2)
    def make_model(self) -> MADDPGModel:
        me, cfg = self.agents[self.agent_index], self.config
        critic_in_dim = self.agent_id_dim + sum(
            self.agents[k].obs_dim + self.agents[k].action_dim + self.masked
            for k in self.critic_agents
        )
        approximators = {
            str(k): PolicyApproximator(
                self.agents[k].obs_dim, self.agents[k].action_dim,
                self.agents[k].categorical_segments, cfg["actor_hiddens"],
                cfg["actor_hidden_activation"], cfg["gumbel_softmax_temperature"],
                cfg["gumbel_softmax_hard"], cfg["layer_init"], cfg["gumbel_target_noise"],
                (cfg["target_action_noise"], cfg["target_action_noise_clip"]),
            )
            for k in self.inferred_agents
        }
        return MADDPGModel(
            self.observation_space,
            self.action_space,
            self.action_head.out_dim,
            self.config["model"],
            "maddpg_model",
            obs_dim=me.obs_dim + self.agent_id_dim,
            critic_in_dim=critic_in_dim,
            actor_hiddens=self.config["actor_hiddens"],
            actor_activation=self.config["actor_hidden_activation"],
            critic_hiddens=self.config["critic_hiddens"],
            critic_activation=self.config["critic_hidden_activation"],
            approximators=approximators,
            num_subpolicies=self.num_subpolicies,
            layer_init=cfg["layer_init"],
            twin_critics=cfg["twin_critics"],
        )

    @override(TorchPolicyV2)
    def optimizer(self) -> List[torch.optim.Optimizer]:
        # foreach: one fused kernel per step for all tensors (torch's CPU default
        # is a Python loop over them, a tenth of an update round here).
        optimizers = [
            torch.optim.Adam(self.model.actors.parameters(), lr=self.config["actor_lr"], foreach=True),
            # One optimizer for Q_i, or for both of MATD3's twin critics (their loss is a sum).
            torch.optim.Adam([p for critic in self.model.critics for p in critic.parameters()],
                             lr=self.config["critic_lr"], foreach=True),
        ]
        if self.inferred_agents:  # the approximations learn at the actor's rate
            optimizers.append(torch.optim.Adam(
                self.model.approximators.parameters(), lr=self.config["actor_lr"], foreach=True))
        return optimizers

    @functools.cached_property
    def params(self) -> Dict[str, List[torch.Tensor]]:
        """Each net's parameter list, built once (MADDPGNetworks.parameter_lists)."""
        return self.model.parameter_lists()

    # --- acting (decentralized execution) ------------------------------------

    def exploration_noise_scale(self, timestep: int) -> float:
        """Gaussian noise scale for Box actions, annealed linearly over env steps."""
        start = self.config["exploration_noise_scale"]
        final = self.config["exploration_noise_final_scale"]
        if final is None:
            return start
        fraction = min(1.0, timestep / self.config["exploration_noise_anneal_timesteps"])
        return start + fraction * (final - start)

    @override(TorchPolicyV2)
    def compute_actions_from_input_dict(
        self, input_dict, explore: Optional[bool] = None, timestep: Optional[int] = None, **kwargs
    ):
        explore = self.config["explore"] if explore is None else explore
        timestep = self.global_timestep if timestep is None else timestep
        # On the policy's device (a GPU on the driver with num_gpus; env runners act on CPU).
        obs = torch.as_tensor(self.actor_inputs(input_dict[SampleBatch.OBS]), dtype=self.model.dtype,
                              device=self.device)
        obs = self.with_agent_id(obs, input_dict.get(SampleBatch.AGENT_INDEX) if self.agent_id_dim else None)
        with torch.no_grad():
            out = self.model.per_subpolicy(self.model.actors, obs, self._subpolicy_index(input_dict, len(obs)))
            critic_action = self.action_head.sample(
                out, explore, self.exploration_noise_scale(timestep)
            ).cpu().numpy()
        self.global_timestep += len(obs)
        return self.action_head.to_env(critic_action), [], {jb.CRITIC_ACTION: critic_action}

    def actor_inputs(self, obs) -> np.ndarray:
        """A batch of o_i as the actor reads it: [B, obs_dim] floats.

        Takes what the samplers give (already flat floats) or a batch of the
        env's own observations of this agent's space (images, ints of a
        Discrete, dicts of a Dict space, ...), as `compute_single_action(env_obs)`
        passes them.
        """
        dim = self.agents[self.agent_index].obs_dim
        if torch.is_tensor(obs):
            obs = obs.cpu().numpy()
        flat = (isinstance(obs, np.ndarray) and obs.ndim == 2 and obs.shape[1] == dim
                and np.issubdtype(obs.dtype, np.floating))
        if not flat:
            obs = np.stack([self.flatten_obs(o) for o in unbatch(obs)])
        return np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)

    def _subpolicy_index(self, input_dict, n: int) -> Optional[torch.Tensor]:
        """Which sub-policy acts for each row: the input's SUBPOLICY column (the
        sampler's per-episode draw), else `subpolicy_for_acting`, else 0."""
        if self.num_subpolicies == 1:
            return None
        if jb.SUBPOLICY in input_dict:
            return torch.as_tensor(np.asarray(input_dict[jb.SUBPOLICY]), dtype=torch.long,
                                   device=self.device)
        fixed = self.config["subpolicy_for_acting"]
        return torch.full((n,), 0 if fixed is None else fixed, dtype=torch.long, device=self.device)

    def target_actions(self, new_obs: torch.Tensor, subpolicy: Optional[torch.Tensor] = None,
                       agent: Optional[int] = None) -> torch.Tensor:
        """a'_i = mu'_i(o'_i) of agent i (joint index `agent`; default the
        policy's first), as the critic sees it (called at learn time); with a
        policy ensemble, from the target of the sub-policy that acted."""
        new_obs = self.with_agent_id(new_obs, self.agent_index if agent is None else agent)
        out = self.model.per_subpolicy(self.model.target_actors, new_obs, subpolicy)
        return self.action_head.target_action(out)

    @override(TorchPolicyV2)
    def set_weights(self, weights) -> None:
        # Checkpoints written before policy ensembles had one actor named "actor".
        renamed = {}
        for key, value in weights.items():
            for old, new in (("target_actor.", "target_actors.0."), ("actor.", "actors.0.")):
                if key.startswith(old):
                    key = new + key[len(old):]
                    break
            renamed[key] = value
        super().set_weights(renamed)

    @override(TorchPolicyV2)
    def set_state(self, state) -> None:
        super().set_state(state)
        # RLlib saves num_grad_updates in the state but does not restore it; the
        # actor delay (actor_update_delay) counts updates with it.
        self.num_grad_updates = state.get("num_grad_updates", self.num_grad_updates)

    def get_critic_weights(self) -> Dict[str, Dict[str, np.ndarray]]:
        """Q_i and Q'_i (and MATD3's Q^2_i, Q^2'_i) as numpy state dicts (e.g. to copy
        one agent's critic elsewhere)."""
        return {
            name: {k: v.detach().cpu().numpy().copy() for k, v in getattr(self.model, name).state_dict().items()}
            for name in self.model.critic_names
        }

    def set_critic_weights(self, weights: Dict[str, Dict[str, np.ndarray]]) -> None:
        """Loads Q_i and Q'_i (and Q^2_i, Q^2'_i) from `get_critic_weights()`; the actor is untouched."""
        for name in self.model.critic_names:
            getattr(self.model, name).load_state_dict(
                {k: torch.as_tensor(v) for k, v in weights[name].items()}
            )

    # --- the centralized critic's data ---------------------------------------

    @override(TorchPolicyV2)
    def postprocess_trajectory(self, sample_batch, other_agent_batches=None, episode=None):
        # Whose trajectory: the policy's agent, or (shared) the one the lockstep
        # sampler names in AGENT_INDEX (its joint index).
        own = self.agent_index
        if len(self.group) > 1 and other_agent_batches is not None:
            own = int(sample_batch[SampleBatch.AGENT_INDEX][0])
        return joint_batch.attach_joint_columns(sample_batch, other_agent_batches, self.agents, own,
                                                n_step=self.config["n_step"], gamma=self.config["gamma"])

    # --- learning (the update itself: core/update.py) -------------------------------

    @override(TorchPolicyV2)
    def learn_on_batch(self, batch: Dict[str, torch.Tensor], actor_batches=None) -> Dict:
        """One MADDPG update of agent i (update.update_agent) on a joint minibatch
        that already carries the target actions a'_j (joint_batch.attach_target_actions)."""
        stats = update.update_agent(self, batch, actor_batches)
        self.num_grad_updates += 1
        return {"learner_stats": stats}
