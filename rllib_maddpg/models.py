"""MADDPGModel: an agent's networks (core/networks.py) as RLlib's TorchModelV2.

RLlib's old-stack policy keeps its model as a TorchModelV2 (it saves,
restores and syncs its weights); the networks and everything MADDPG computes
with them are plain torch in core/.
"""

from typing import Dict

import gymnasium as gym
from torch import nn

from ray.rllib.models.torch.torch_modelv2 import TorchModelV2

from rllib_maddpg.core.networks import MADDPGNetworks


class MADDPGModel(TorchModelV2, MADDPGNetworks):
    """MADDPGNetworks that RLlib can hold as a policy's model; `forward` is the first actor."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, num_outputs: int,
                 model_config: Dict, name: str, **networks):
        nn.Module.__init__(self)
        TorchModelV2.__init__(self, obs_space, action_space, num_outputs, model_config, name)
        MADDPGNetworks.__init__(self, action_out_dim=num_outputs, **networks)

    def forward(self, input_dict, state, seq_lens):
        obs = input_dict["obs_flat"] if "obs_flat" in input_dict else input_dict["obs"]
        return self.actor(obs.float().flatten(1)), state
