"""Networks of one MADDPG agent: actor, critic, their targets, policy approximators (plain torch).

An agent owns four MLPs: the actor mu_i(o_i), the critic Q_i(x, a_1..a_N)
and a target copy of each (mu'_i, Q'_i). The actor sees only its own
observation; the critic sees the joint observation and every agent's action,
concatenated in the fixed agent order (or only its own, for a local DDPG
critic). The original code used 2 hidden layers of 64 ReLU units for both.

MATD3 (`twin_critics`) adds a second critic Q^2_i and its target Q^2'_i,
built only then, so a MADDPG model's weights and checkpoints keep their keys.

How actor outputs become actions (and exploration) is in actions.py.
"""

import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from rllib_maddpg.core import losses
from rllib_maddpg.core.actions import gumbel_softmax

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}


# How the weights of every Linear layer start (config key `layer_init`).
LAYER_INITS = ("glorot_uniform", "torch_default")


def init_linear(layer: nn.Linear, scheme: str) -> nn.Linear:
    """Initialises one layer in place.

    "glorot_uniform": weights ~ U(-sqrt(6 / (fan_in + fan_out)), +...) and zero
    biases, as the original code's `tf.contrib.layers.fully_connected`.
    "torch_default": what `nn.Linear` does (Kaiming-uniform with a = sqrt(5),
    about half the Glorot scale, and biases ~ U(+-1/sqrt(fan_in))). Under it
    the speaker of speaker-listener ended runs with all 64 first-layer ReLUs
    dead for every goal (a constant message); see docs/departures.md.
    """
    if scheme == "glorot_uniform":
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    elif scheme != "torch_default":
        raise ValueError(f"unknown layer_init {scheme!r}: use one of {list(LAYER_INITS)}.")
    return layer


def mlp(in_dim: int, hiddens: Sequence[int], activation: str, out_dim: int,
        init: str = "glorot_uniform") -> nn.Sequential:
    """in_dim -> hiddens (with activation) -> out_dim (linear), initialised by `init`."""
    layers: List[nn.Module] = []
    for width in hiddens:
        layers += [init_linear(nn.Linear(in_dim, width), init), ACTIVATIONS[activation]()]
        in_dim = width
    layers.append(init_linear(nn.Linear(in_dim, out_dim), init))
    return nn.Sequential(*layers)


class PolicyApproximator(nn.Module):
    """mu_hat_i^j: agent i's model of agent j's policy, from o_j alone (paper section 4.2).

    Categorical actions (Gumbel-Softmax heads): logits per component. Box
    actions: a Gaussian over j's action in the critic's [-1, 1] scale, with
    mean tanh(m) and a learned log-std.
    """

    def __init__(self, obs_dim: int, action_dim: int, categorical_segments, hiddens, activation,
                 temperature: float, hard: bool, init: str = "glorot_uniform",
                 target_noise: bool = True, smoothing=(0.0, 0.5)):
        super().__init__()
        self.segments = list(categorical_segments) if categorical_segments else None
        self.temperature, self.hard, self.target_noise = temperature, hard, target_noise
        self.smoothing = tuple(smoothing)  # (sigma, c) of target policy smoothing, Box only
        self.net = mlp(obs_dim, hiddens, activation, action_dim if self.segments else 2 * action_dim,
                       init)

    def log_prob_and_entropy(self, obs: torch.Tensor, actions: torch.Tensor):
        out = self.net(obs)
        if self.segments:
            return losses.categorical_log_prob_and_entropy(out, actions, self.segments)
        mean, log_std = out.chunk(2, -1)
        return losses.gaussian_log_prob_and_entropy(torch.tanh(mean), log_std.clamp(-5, 2), actions)

    def expected_action(self, obs: torch.Tensor) -> torch.Tensor:
        """E[a_j]: the softmax probabilities per component, or tanh(mean)."""
        out = self.net(obs)
        if self.segments:
            return torch.cat([torch.softmax(x, -1) for x in torch.split(out, self.segments, -1)], -1)
        return torch.tanh(out.chunk(2, -1)[0])

    def target_action(self, obs: torch.Tensor) -> torch.Tensor:
        """a'_j as agent i's critic target uses it: like the true target actors' (sampled,
        or noise-free with `gumbel_target_noise` False; Box: smoothed as theirs)."""
        out = self.net(obs)
        if self.segments:
            return torch.cat([
                gumbel_softmax(x, self.temperature, self.hard, noise=self.target_noise)
                for x in torch.split(out, self.segments, -1)
            ], -1)
        return losses.smoothed_target_action(torch.tanh(out.chunk(2, -1)[0]), *self.smoothing)


class MADDPGNetworks(nn.Module):
    """Actor mu_i, critic Q_i and their targets mu'_i, Q'_i for one agent (or a shared group).

    `critic_in_dim` is sum_j dim(o_j) + sum_j dim(a_j) over the agents the
    critic sees (all of them for MADDPG, agent i alone for a local critic),
    plus their alive flags (masked critics) and id_i (a shared policy with
    agent ids). With a policy ensemble (paper section 4.3) the agent has K
    actors mu_i^(1..K) (`actors`, `target_actors`) and one critic; `actor`
    is the first (the only one when K = 1). With `twin_critics` (MATD3) it
    also has Q^2_i (`critic_2`) and Q^2'_i (`target_critic_2`); `critics` and
    `target_critics` list one or two.
    """

    def __init__(
        self,
        *,
        obs_dim: int,
        action_out_dim: int,
        critic_in_dim: int,
        actor_hiddens: Sequence[int],
        actor_activation: str,
        critic_hiddens: Sequence[int],
        critic_activation: str,
        approximators: Optional[Dict[str, PolicyApproximator]] = None,
        num_subpolicies: int = 1,
        layer_init: str = "glorot_uniform",
        twin_critics: bool = False,
    ):
        if "_modules" not in self.__dict__:  # not yet set up by a subclass (models.py)
            nn.Module.__init__(self)
        self.actors = nn.ModuleList(
            mlp(obs_dim, actor_hiddens, actor_activation, action_out_dim, layer_init)
            for _ in range(num_subpolicies)
        )
        self.critic = mlp(critic_in_dim, critic_hiddens, critic_activation, 1, layer_init)
        self.target_actors = copy.deepcopy(self.actors).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # Policy inference: mu_hat_i^j and mu_hat'_i^j per other agent j (by joint index).
        self.approximators = nn.ModuleDict(approximators or {})
        self.target_approximators = copy.deepcopy(self.approximators).requires_grad_(False)
        # MATD3: a second, independently initialised critic and its target.
        self.twin_critics = bool(twin_critics)
        if self.twin_critics:
            self.critic_2 = mlp(critic_in_dim, critic_hiddens, critic_activation, 1, layer_init)
            self.target_critic_2 = copy.deepcopy(self.critic_2).requires_grad_(False)

    @property
    def actor(self) -> nn.Module:
        return self.actors[0]

    @property
    def dtype(self) -> torch.dtype:
        """The nets' dtype: float32, or torch's default dtype when they were built
        (float64 in tests that compare two update paths beyond float32's rounding)."""
        return self.actors[0][0].weight.dtype

    @property
    def target_actor(self) -> nn.Module:
        return self.target_actors[0]

    @property
    def critic_names(self) -> List[str]:
        """The critics and their targets by attribute name: Q_i, Q'_i (and Q^2_i, Q^2'_i)."""
        return ["critic", "target_critic"] + (["critic_2", "target_critic_2"] if self.twin_critics else [])

    @property
    def critics(self) -> List[nn.Module]:
        """Q_i, or (MATD3) Q^1_i = Q_i and Q^2_i."""
        return [self.critic, self.critic_2] if self.twin_critics else [self.critic]

    @property
    def target_critics(self) -> List[nn.Module]:
        return [self.target_critic, self.target_critic_2] if self.twin_critics else [self.target_critic]

    def parameter_lists(self) -> Dict[str, List[torch.Tensor]]:
        """Each net's parameters as a list: "actors", "critic", their targets, the
        approximators and theirs, "critic_2" and its target (MATD3), and "actors.<k>" per sub-policy. Weights are only
        ever updated in place (optimizers, soft updates, `load_state_dict`), so a
        caller can build this once; walking the module tree every step cost a
        tenth of an update round."""
        names = ("actors", "critic", "target_actors", "target_critic",
                 "approximators", "target_approximators") + (
                     ("critic_2", "target_critic_2") if self.twin_critics else ())
        params = {name: list(getattr(self, name).parameters()) for name in names}
        for k, actor in enumerate(self.actors):
            params[f"actors.{k}"] = list(actor.parameters())
        return params

    @staticmethod
    def per_subpolicy(nets: nn.ModuleList, obs: torch.Tensor, subpolicy: Optional[torch.Tensor]):
        """Row b goes through nets[subpolicy[b]] (nets[0] when no index is given)."""
        if len(nets) == 1 or subpolicy is None:
            return nets[0](obs)
        outs = torch.stack([net(obs) for net in nets])  # [K, B, out]: K is small
        return outs[subpolicy.long(), torch.arange(obs.shape[0], device=obs.device)]

    @staticmethod
    def q(critic: nn.Module, obs_n: List[torch.Tensor], act_n: List[torch.Tensor]) -> torch.Tensor:
        """Q(x, a_1..a_N) with x = (o_1..o_N): one forward pass, shape [B]."""
        return critic(torch.cat(obs_n + act_n, dim=-1)).squeeze(-1)
