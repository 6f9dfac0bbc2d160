"""core/batched.py: one update round of N alike agents on stacked weights equals
core/update.py's per-agent loop (float64, the same weights and noise)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rllib_maddpg.core import joint as jb
from rllib_maddpg.core import update
from rllib_maddpg.core.batched import BatchedMADDPG
from plain_learner import PlainLearner

pytestmark = pytest.mark.unit

N, OBS, ACT, B = 3, 6, 4, 64
CONFIG = {"actor_hiddens": [16, 16], "critic_hiddens": [16, 16], "actor_hidden_activation": "relu",
          "critic_hidden_activation": "relu", "actor_lr": 1e-2, "critic_lr": 1e-2, "gamma": 0.95, "tau": 0.01, "grad_norm_clipping": 0.5,
          "actor_regularization": 1e-3, "actor_update_delay": 1, "gumbel_softmax_temperature": 1.0,
          "gumbel_softmax_hard": False, "gumbel_target_noise": True, "simplex_box_actions": True,
          "target_action_noise": 0.0, "target_action_noise_clip": 0.5}
HEADS = {  # deterministic tanh (Box), and Gumbel-Softmax with the same seeds in both paths
    "box": (gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32), None),
    "simplex": (gym.spaces.Box(0.0, 1.0, (ACT,), np.float32), (ACT,)),
}


@pytest.mark.parametrize("head, scope, mode", [
    ("simplex", "variable", "shared"), ("box", "network", "shared"),
    ("box", "variable", "full"), ("simplex", "network", "vmap"),
])
def test_batched_round_equals_the_per_agent_updates(float64, head, scope, mode):
    config = dict(CONFIG, grad_norm_clipping_scope=scope)
    agents = [jb.AgentSpec(k, str(k), OBS, ACT) for k in range(N)]
    torch.manual_seed(0)
    learners = [PlainLearner(agents, k, config, *HEADS[head]) for k in range(N)]
    batched = BatchedMADDPG([l.model for l in learners], learners[0].action_head, config, mode)
    rng = np.random.default_rng(0)
    batch = {name: torch.from_numpy(rng.normal(size=(B,) + shape)) for name, (shape, _) in
             jb.replay_columns(agents).items()}
    batch.update({jb.terminateds_col(k): (batch[jb.terminateds_col(k)] > 0).double() for k in range(N)})
    for r in range(3):
        torch.manual_seed(r)
        loop_batch = dict(batch)
        jb.attach_target_actions(loop_batch, learners)
        expected = [update.update_agent(learner, loop_batch) for learner in learners]
        torch.manual_seed(r)
        stats = batched.update_round(batch)
        for k in range(N):
            for name in ("q_mean", "target_y_mean", "critic_loss", "critic_grad_norm",
                         "actor_loss", "actor_grad_norm"):
                assert stats[name][k].item() == pytest.approx(expected[k][name], rel=1e-9), (r, k, name)
    copies = [PlainLearner(agents, k, config, *HEADS[head]) for k in range(N)]
    batched.write_back([c.model for c in copies])
    for learner, copy in zip(learners, copies):
        for (name, value), other in zip(learner.model.state_dict().items(), copy.model.state_dict().values()):
            torch.testing.assert_close(other, value, rtol=0, atol=1e-10, msg=name)
