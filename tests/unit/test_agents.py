"""Reading agents from envs as users bring them (agents.py, envs/spaces.py).

Each env MADDPG cannot take gets its own message naming the fix; agent ids
that come from a set get one order in every process; observations of any
shape become the flat o_i the networks read.
"""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from ray.tune.registry import register_env

from rllib_maddpg import MADDPGConfig
from rllib_maddpg.agents import env_agent_ids
from rllib_maddpg.envs.spaces import flat_obs_dim, obs_flattener
from support import StampEnv, build_policies

pytestmark = pytest.mark.unit


class _SingleAgentEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        pass


class _VectorEnvWithoutClose:
    """Like VMAS's `wrapper="rllib"` env: a single-agent vector env with no close()."""

    num_envs = 4

    def __init__(self, config=None):
        pass

    def vector_reset(self, *, seeds=None, options=None):
        return [], []


def _actions_env(space):
    class _Env(StampEnv):
        def __init__(self, config=None):
            super().__init__(config)
            self.action_spaces[1] = space
    return _Env


@pytest.mark.parametrize("make_env, message", [
    (lambda: _SingleAgentEnv, r"built a _SingleAgentEnv: it is a single-agent gymnasium env"),
    (lambda: _VectorEnvWithoutClose, r"it is a vector env .*num_envs_per_env_runner"),
    (lambda: _registered("test/aec", lambda c: __import__("mpe2.simple_v3").simple_v3.env()),
     r"PettingZoo AEC .*aec_to_parallel.*register_pettingzoo_env"),
    (lambda: _registered("test/raw_parallel", lambda c: __import__("mpe2.simple_v3").simple_v3.parallel_env()),
     r"PettingZoo ParallelEnv registered as it is: register it with rllib_maddpg.register_pettingzoo_env"),
    (lambda: _actions_env(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3)))),
     r"does not support the action space Tuple"),
    (lambda: _actions_env(gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)),
     r"needs a bounded Box action space"),
])
def test_each_env_maddpg_cannot_take_gets_its_own_clear_error(make_env, message):
    with pytest.raises(ValueError, match=message):
        MADDPGConfig().environment(make_env()).validate()


def _registered(name, creator):
    register_env(name, creator)
    return name


class _SetIdsEnv(StampEnv):
    """Agent ids given only as a set, as RLlib's ParallelPettingZooEnv does."""

    def __init__(self, config=None):
        super().__init__(config)
        self._agent_ids = {"zeta", "alpha", "mid"}
        self.possible_agents = list(self._agent_ids)


def test_agent_ids_from_a_set_are_sorted():
    assert env_agent_ids(_SetIdsEnv()) == ["alpha", "mid", "zeta"]
    env = StampEnv()
    env.possible_agents = [2, 0, 1]  # an ordered list is the env's own order
    assert env_agent_ids(env) == [2, 0, 1]


def test_rllib_parallel_pettingzoo_env_takes_the_pettingzoo_order_in_every_process():
    code = (
        "from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv\n"
        "from mpe2 import simple_spread_v3\n"
        "from rllib_maddpg.agents import env_agent_ids\n"
        "print(env_agent_ids(ParallelPettingZooEnv(simple_spread_v3.parallel_env(N=6))))\n"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout.strip()
        for seed in (0, 1, 2)
    }
    assert outputs == {str([f"agent_{k}" for k in range(6)])}


class _ImageObsEnv(StampEnv):
    """StampEnv with agent 1 seeing a (4, 4, 3) image and agent 2 a (5, 2) table."""

    def __init__(self, config=None):
        super().__init__(config)
        self.observation_spaces[1] = gym.spaces.Box(0, 1, (4, 4, 3), np.float32)
        self.observation_spaces[2] = gym.spaces.Box(-1, 1, (5, 2), np.float64)


def test_box_observations_of_any_rank_are_flattened_in_c_order():
    space = gym.spaces.Box(0, 1, (2, 3, 4), np.float32)
    assert flat_obs_dim(space) == 24
    obs = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    flat = obs_flattener(space)(obs)
    assert flat.dtype == np.float32 and flat.tolist() == list(range(24))


def test_image_observations_size_the_networks_and_the_actor_takes_them_raw():
    config, policies = build_policies(env=_ImageObsEnv)
    assert [a.obs_dim for a in config._maddpg_agents] == [3, 48, 10]
    image = np.random.default_rng(0).random((4, 4, 3)).astype(np.float32)
    raw, _, _ = policies[1].compute_single_action(image, explore=False)
    flat, _, _ = policies[1].compute_single_action(image.reshape(-1), explore=False)
    assert raw == flat
    batch = np.stack([image, image * 0.5])
    assert policies[1].actor_inputs(batch).shape == (2, 48)
    np.testing.assert_array_equal(policies[1].actor_inputs(batch)[0], image.reshape(-1))
