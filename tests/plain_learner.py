"""Agent i of MADDPG as plain torch, without RLlib: what core/update.py's functions act on
(networks, named optimizers, an action head, the agents its critic sees). Used by
tests/unit/test_core.py, tests/unit/test_batched.py and benchmarks/batched_update_floor.py."""

import torch

from rllib_maddpg.core.actions import make_action_head
from rllib_maddpg.core.networks import MADDPGNetworks


class PlainLearner:
    """Agent `index` of `agents` (core.joint.AgentSpec), a centralized unmasked critic over all
    of them; `config` holds the policy config keys the update and the nets read."""

    def __init__(self, agents, index, config, action_space, simplex_segments=None):
        self.agents, self.agent_index, self.group, self.config = agents, index, [index], config
        self.masked, self.agent_id_dim, self.inferred_agents, self.num_subpolicies = False, 0, [], 1
        self.num_grad_updates = 0
        self.action_head = make_action_head(action_space, simplex_segments, config)
        self.model = MADDPGNetworks(
            obs_dim=agents[index].obs_dim, action_out_dim=self.action_head.out_dim,
            critic_in_dim=sum(a.obs_dim + a.action_dim for a in agents),
            actor_hiddens=config["actor_hiddens"], actor_activation=config["actor_hidden_activation"],
            critic_hiddens=config["critic_hiddens"], critic_activation=config["critic_hidden_activation"])
        self.params = self.model.parameter_lists()
        self.optimizers = {"actor": torch.optim.Adam(self.model.actors.parameters(), lr=config["actor_lr"]),
                           "critic": torch.optim.Adam(self.model.critic.parameters(), lr=config["critic_lr"])}

    def critic_agents_of(self, i):
        return list(range(len(self.agents)))

    def with_agent_id(self, x, agents):
        return x

    def target_actions(self, new_obs, subpolicy=None, agent=None):
        return self.action_head.target_action(self.model.target_actor(new_obs))
