"""Networks of one MADDPG agent and the action heads that turn actor outputs into actions.

An agent owns four MLPs: the actor mu_i(o_i), the critic Q_i(x, a_1..a_N)
and a target copy of each (mu'_i, Q'_i). The actor sees only its own
observation; the critic sees the joint observation and every agent's action,
concatenated in the fixed agent order (or only its own, for a local DDPG
critic). The original code used 2 hidden layers of 64 ReLU units for both.

An *action head* sits after the actor. It knows the action space and answers
three questions the algorithm asks about agent i's action:
  - `sample`: the action to act with (exploration on or off);
  - `policy_action`: the differentiable a_i = mu_i(o_i) for the actor loss;
  - `to_env`: the action the environment receives, from the critic's view.
The critic always sees a float vector (`critic_dim` entries): a relaxed
one-hot per categorical component, or the Box action scaled to [-1, 1].
"""

import copy
from typing import Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.models.torch.torch_modelv2 import TorchModelV2

from rllib_maddpg import losses

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
    dead for every goal (a constant message); see README, "Departures".
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


class GumbelSoftmaxHead:
    """Categorical components sampled with Gumbel-Softmax (Discrete, MultiDiscrete, simplex Box).

    The actor's output is split into one block of logits per component
    (`segments`). Kinds:
      - "discrete": Discrete(n); the env gets the argmax as an int;
      - "multi_discrete": MultiDiscrete(nvec); the env gets one int per component;
      - "simplex": Box(0, 1, (n,)) read as probability vectors (MPE's continuous
        mode); the env gets the (relaxed) vectors themselves, as in the original code.
    """

    def __init__(self, segments: Sequence[int], kind: str, temperature: float, hard: bool):
        self.segments = [int(s) for s in segments]
        self.kind = kind
        self.temperature = temperature
        self.hard = hard
        self.out_dim = self.critic_dim = sum(self.segments)

    def _per_segment(self, out: torch.Tensor, fn) -> torch.Tensor:
        if len(self.segments) == 1:
            return fn(out)
        return torch.cat([fn(x) for x in torch.split(out, self.segments, dim=-1)], dim=-1)

    def sample(self, out: torch.Tensor, explore: bool, noise_scale: float) -> torch.Tensor:
        if explore:
            return self.policy_action(out)
        if self.kind == "simplex" and not self.hard:
            return self._per_segment(out, lambda x: torch.softmax(x / self.temperature, -1))
        return self._per_segment(
            out, lambda x: losses.gumbel_softmax(x, self.temperature, hard=True, noise=False)
        )

    def policy_action(self, out: torch.Tensor) -> torch.Tensor:
        return self._per_segment(
            out, lambda x: losses.gumbel_softmax(x, self.temperature, self.hard)
        )

    # The original code's target actors sample too: a'_j ~ GumbelSoftmax(mu'_j(o'_j)).
    target_action = policy_action

    def to_env(self, critic_action: np.ndarray) -> np.ndarray:
        if self.kind == "simplex":
            return critic_action.astype(np.float32, copy=False)
        if self.kind == "discrete":
            return critic_action.argmax(-1)
        return np.stack(
            [x.argmax(-1) for x in np.split(critic_action, np.cumsum(self.segments)[:-1], -1)],
            axis=-1,
        )


class GaussianBoxHead:
    """A bounded Box action: tanh-squashed deterministic action plus Gaussian noise (DDPG).

    The critic sees the action in [-1, 1]; the env gets it rescaled to
    [low, high]. Exploration adds N(0, noise_scale^2) in the [-1, 1] scale and
    clips.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low = low.astype(np.float32)
        self.high = high.astype(np.float32)
        self.out_dim = self.critic_dim = int(low.size)

    def sample(self, out: torch.Tensor, explore: bool, noise_scale: float) -> torch.Tensor:
        action = torch.tanh(out)
        if explore and noise_scale > 0:
            action = (action + noise_scale * torch.randn_like(action)).clamp_(-1.0, 1.0)
        return action

    def policy_action(self, out: torch.Tensor) -> torch.Tensor:
        return torch.tanh(out)

    target_action = policy_action

    def to_env(self, critic_action: np.ndarray) -> np.ndarray:
        return self.low + (critic_action + 1.0) * 0.5 * (self.high - self.low)


def make_action_head(
    action_space: gym.Space,
    simplex_segments: Optional[Sequence[int]],
    config: Dict,
):
    """The action head for an action space (see module docstring).

    `simplex_segments` marks a Box as probability vectors (given by the env
    wrapper for MPE's continuous mode); `config["simplex_box_actions"]` turns
    that reading off.
    """
    temperature = config["gumbel_softmax_temperature"]
    hard = config["gumbel_softmax_hard"]
    if isinstance(action_space, gym.spaces.Discrete):
        return GumbelSoftmaxHead([action_space.n], "discrete", temperature, hard)
    if isinstance(action_space, gym.spaces.MultiDiscrete) and len(action_space.shape) == 1:
        return GumbelSoftmaxHead(list(action_space.nvec), "multi_discrete", temperature, hard)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        if simplex_segments and config["simplex_box_actions"]:
            if sum(simplex_segments) != action_space.shape[0]:
                raise ValueError(
                    f"simplex segments {list(simplex_segments)} do not add up to the "
                    f"action size {action_space.shape[0]}; fix the env's "
                    "`action_simplex_segments`."
                )
            return GumbelSoftmaxHead(simplex_segments, "simplex", temperature, hard)
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"MADDPG needs a bounded Box action space, got {action_space}: give the "
                "env's action space finite low/high (the actor squashes with tanh)."
            )
        return GaussianBoxHead(action_space.low, action_space.high)
    raise ValueError(
        f"MADDPG does not support the action space {action_space}: use Box (1-D, "
        "bounded), Discrete or MultiDiscrete (1-D), e.g. flatten a Dict/Tuple space "
        "in an env wrapper."
    )


class PolicyApproximator(nn.Module):
    """mu_hat_i^j: agent i's model of agent j's policy, from o_j alone (paper section 4.2).

    Categorical actions (Gumbel-Softmax heads): logits per component. Box
    actions: a Gaussian over j's action in the critic's [-1, 1] scale, with
    mean tanh(m) and a learned log-std.
    """

    def __init__(self, obs_dim: int, action_dim: int, categorical_segments, hiddens, activation,
                 temperature: float, hard: bool, init: str = "glorot_uniform"):
        super().__init__()
        self.segments = list(categorical_segments) if categorical_segments else None
        self.temperature, self.hard = temperature, hard
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
        """a'_j as agent i's critic target uses it: sampled like the true target actors'."""
        out = self.net(obs)
        if self.segments:
            return torch.cat([
                losses.gumbel_softmax(x, self.temperature, self.hard)
                for x in torch.split(out, self.segments, -1)
            ], -1)
        return torch.tanh(out.chunk(2, -1)[0])


class MADDPGModel(TorchModelV2, nn.Module):
    """Actor mu_i, critic Q_i and their targets mu'_i, Q'_i for one agent.

    `critic_in_dim` is sum_j dim(o_j) + sum_j dim(a_j) over the agents the
    critic sees (all of them for MADDPG, agent i alone for a local critic).
    With a policy ensemble (paper section 4.3) the agent has K actors
    mu_i^(1..K) (`actors`, `target_actors`) and one critic; `actor` is the
    first (the only one when K = 1).
    """

    def __init__(
        self,
        obs_space: gym.Space,
        action_space: gym.Space,
        num_outputs: int,
        model_config: Dict,
        name: str,
        *,
        obs_dim: int,
        critic_in_dim: int,
        actor_hiddens: Sequence[int],
        actor_activation: str,
        critic_hiddens: Sequence[int],
        critic_activation: str,
        approximators: Optional[Dict[str, PolicyApproximator]] = None,
        num_subpolicies: int = 1,
        layer_init: str = "glorot_uniform",
    ):
        nn.Module.__init__(self)
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name)
        self.actors = nn.ModuleList(
            mlp(obs_dim, actor_hiddens, actor_activation, num_outputs, layer_init)
            for _ in range(num_subpolicies)
        )
        self.critic = mlp(critic_in_dim, critic_hiddens, critic_activation, 1, layer_init)
        self.target_actors = copy.deepcopy(self.actors).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # Policy inference: mu_hat_i^j and mu_hat'_i^j per other agent j (by joint index).
        self.approximators = nn.ModuleDict(approximators or {})
        self.target_approximators = copy.deepcopy(self.approximators).requires_grad_(False)

    @property
    def actor(self) -> nn.Module:
        return self.actors[0]

    @property
    def target_actor(self) -> nn.Module:
        return self.target_actors[0]

    @staticmethod
    def per_subpolicy(nets: nn.ModuleList, obs: torch.Tensor, subpolicy: Optional[torch.Tensor]):
        """Row b goes through nets[subpolicy[b]] (nets[0] when no index is given)."""
        if len(nets) == 1 or subpolicy is None:
            return nets[0](obs)
        outs = torch.stack([net(obs) for net in nets])  # [K, B, out]: K is small
        return outs[subpolicy.long(), torch.arange(obs.shape[0])]

    def forward(self, input_dict, state, seq_lens):
        obs = input_dict["obs_flat"] if "obs_flat" in input_dict else input_dict["obs"]
        return self.actor(obs.float().flatten(1)), state

    @staticmethod
    def q(critic: nn.Module, obs_n: List[torch.Tensor], act_n: List[torch.Tensor]) -> torch.Tensor:
        """Q(x, a_1..a_N) with x = (o_1..o_N): one forward pass, shape [B]."""
        return critic(torch.cat(obs_n + act_n, dim=-1)).squeeze(-1)
