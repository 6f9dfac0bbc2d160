"""How an agent acts and explores: action heads and Gumbel-Softmax sampling.

An *action head* sits after agent i's actor mu_i. It knows the action space
and answers the questions the algorithm asks about agent i's action:
  - `sample`: the action to act with, exploration on (a Gumbel-Softmax sample,
    or tanh plus Gaussian noise) or off (the noise-free softmax, or tanh);
  - `policy_action`: the differentiable a_i = mu_i(o_i) for the actor loss;
  - `target_action`: a'_i for the critic target, from the target actor mu'_i(o'_i)
    (a Gumbel-Softmax sample as in the original, or noise-free; a Box action
    with MATD3's target policy smoothing when `target_action_noise` > 0);
  - `to_env`: the action the environment receives, from the critic's view.
The critic always sees a float vector (`critic_dim` entries): a relaxed
one-hot per categorical component, or the Box action scaled to [-1, 1].
"""

from typing import Dict, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch

from rllib_maddpg.core import losses


def gumbel_softmax(
    logits: torch.Tensor, temperature: float, hard: bool, noise: bool = True
) -> torch.Tensor:
    """Gumbel-Softmax sample over the last dimension (paper section 4.1, footnote).

    Discrete (and MPE's probability-vector) actions are not differentiable,
    so, as in the paper and its code, the actor outputs logits l and the
    action is the relaxed one-hot sample

        a = softmax((l + g) / temperature),  g = -log(-log(u)),  u ~ U(0, 1)

    whose gradient w.r.t. l exists. With `hard`, the forward value is the
    one-hot of argmax(a) and the gradient is that of the soft sample
    (straight-through estimator). With `noise=False`, g = 0.

    Args:
        logits: shape [..., n].
        temperature: the relaxation temperature (original code: 1.0).
        hard: return one-hot values with straight-through gradients.
        noise: add Gumbel noise (False gives the noise-free softmax).
    """
    if noise:
        u = torch.rand_like(logits)
        # Clamp so that log(u) and log(-log(u)) stay finite.
        u = u.clamp_(1e-10, 1.0 - 1e-7)
        logits = logits - torch.log(-torch.log(u))
    soft = torch.softmax(logits / temperature, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft



class GumbelSoftmaxHead:
    """Categorical components sampled with Gumbel-Softmax (Discrete, MultiDiscrete, simplex Box).

    The actor's output is split into one block of logits per component
    (`segments`). Kinds:
      - "discrete": Discrete(n); the env gets the argmax as an int;
      - "multi_discrete": MultiDiscrete(nvec); the env gets one int per component;
      - "simplex": Box(0, 1, (n,)) read as probability vectors (MPE's continuous
        mode); the env gets the (relaxed) vectors themselves, as in the original code.
    """

    def __init__(self, segments: Sequence[int], kind: str, temperature: float, hard: bool,
                 target_noise: bool = True):
        self.segments = [int(s) for s in segments]
        self.kind = kind
        self.temperature = temperature
        self.hard = hard
        self.target_noise = target_noise
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
            out, lambda x: gumbel_softmax(x, self.temperature, hard=True, noise=False)
        )

    def policy_action(self, out: torch.Tensor) -> torch.Tensor:
        return self._per_segment(
            out, lambda x: gumbel_softmax(x, self.temperature, self.hard)
        )

    def target_action(self, out: torch.Tensor) -> torch.Tensor:
        """a'_j for the critic target. The original code's target actors sample too,
        a'_j ~ GumbelSoftmax(mu'_j(o'_j)); with `gumbel_target_noise` False it is the
        noise-free softmax (hard: the one-hot argmax), DDPG's deterministic target."""
        return self._per_segment(
            out, lambda x: gumbel_softmax(x, self.temperature, self.hard, noise=self.target_noise)
        )

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
    clips. The target action gets MATD3's target policy smoothing
    (`target_noise` sigma, `target_noise_clip` c; sigma 0: none).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, target_noise: float = 0.0,
                 target_noise_clip: float = 0.5):
        self.low = low.astype(np.float32)
        self.high = high.astype(np.float32)
        self.out_dim = self.critic_dim = int(low.size)
        self.target_noise, self.target_noise_clip = target_noise, target_noise_clip

    def sample(self, out: torch.Tensor, explore: bool, noise_scale: float) -> torch.Tensor:
        action = torch.tanh(out)
        if explore and noise_scale > 0:
            action = (action + noise_scale * torch.randn_like(action)).clamp_(-1.0, 1.0)
        return action

    def policy_action(self, out: torch.Tensor) -> torch.Tensor:
        return torch.tanh(out)

    def target_action(self, out: torch.Tensor) -> torch.Tensor:
        """a'_j = tanh(mu'_j(o'_j)) for the critic target, smoothed when target_noise > 0.
        (Gumbel-Softmax heads are not smoothed: their target action is already a sample.)"""
        return losses.smoothed_target_action(torch.tanh(out), self.target_noise, self.target_noise_clip)

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
    gumbel = (config["gumbel_softmax_temperature"], config["gumbel_softmax_hard"],
              config["gumbel_target_noise"])
    if isinstance(action_space, gym.spaces.Discrete):
        return GumbelSoftmaxHead([action_space.n], "discrete", *gumbel)
    if isinstance(action_space, gym.spaces.MultiDiscrete) and len(action_space.shape) == 1:
        return GumbelSoftmaxHead(list(action_space.nvec), "multi_discrete", *gumbel)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        if simplex_segments and config["simplex_box_actions"]:
            if sum(simplex_segments) != action_space.shape[0]:
                raise ValueError(
                    f"simplex segments {list(simplex_segments)} do not add up to the "
                    f"action size {action_space.shape[0]}; fix the env's "
                    "`action_simplex_segments`."
                )
            return GumbelSoftmaxHead(simplex_segments, "simplex", *gumbel)
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"MADDPG needs a bounded Box action space, got {action_space}: give the "
                "env's action space finite low/high (the actor squashes with tanh)."
            )
        return GaussianBoxHead(action_space.low, action_space.high,
                               config["target_action_noise"], config["target_action_noise_clip"])
    raise ValueError(
        f"MADDPG does not support the action space {action_space}: use Box (1-D, "
        "bounded), Discrete or MultiDiscrete (1-D), e.g. flatten a Dict/Tuple space "
        "in an env wrapper."
    )
