"""batched_update end to end: training with the batched learner gives the weights of
the per-agent loop (float64), survives a checkpoint with its Adam state, and setups it
cannot batch fall back ("auto") or are refused ("on")."""

import numpy as np
import pytest
import torch

from ray.rllib.algorithms.algorithm import Algorithm

from rllib_maddpg import MADDPGConfig
from support import StampEnv

pytestmark = pytest.mark.integration

# Float64 (torch's default dtype while the algorithm is built): the two paths sum in
# different orders, and Adam's first steps (about lr * sign(g)) turn float32's
# rounding into differences up to lr = 1e-2 on weights whose gradient is about 0;
# in float64 they stay near 1e-12 (3e-15 seen after 15 rounds).
ATOL = 1e-9
SMALL = dict(num_steps_sampled_before_learning_starts=200, train_batch_size=64,
             min_sample_timesteps_per_iteration=200, env_steps_per_update=50)


def spread_config(mode, n=3, **overrides):
    return (MADDPGConfig().environment("mpe/simple_spread", env_config={"N": n}).debugging(seed=0)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=25)
            .learners(batched_update=mode).update_from_dict({**SMALL, **overrides}))


def weights(algo):
    return {pid: p.get_weights() for pid, p in algo.policies_by_id().items()}


def assert_same_weights(a, b, atol=ATOL):
    assert a.keys() == b.keys()
    for pid in a:
        assert a[pid].keys() == b[pid].keys()
        for key in a[pid]:
            np.testing.assert_allclose(a[pid][key], b[pid][key], rtol=0, atol=atol, err_msg=f"{pid} {key}")


@pytest.mark.parametrize("n_step", [1, 3])
def test_training_with_the_batched_learner_gives_the_per_agent_weights(ray_local, float64, n_step):
    runs = {}
    for mode in ("off", "on"):
        algo = spread_config(mode, n_step=n_step).build_algo()
        try:
            assert (algo.batched is None) == (mode == "off")
            results = [algo.train() for _ in range(3)]
            assert results[-1]["counters"]["maddpg_num_update_rounds"] >= 8
            runs[mode] = (weights(algo), results[-1]["info"]["learner"],
                          [r["env_runners"]["episode_return_mean"] for r in results])
        finally:
            algo.stop()
    (w_off, stats_off, returns_off), (w_on, stats_on, returns_on) = runs["off"], runs["on"]
    assert_same_weights(w_off, w_on)
    np.testing.assert_allclose(returns_on, returns_off, rtol=1e-9)
    assert stats_on.keys() == stats_off.keys() == {"agent_0", "agent_1", "agent_2"}
    for pid in stats_off:
        off, on = stats_off[pid]["learner_stats"], stats_on[pid]["learner_stats"]
        assert list(on) == list(off)
        assert on == pytest.approx(off, rel=1e-9)


@pytest.mark.parametrize("mode_after", ["on", "off"])
def test_checkpoint_keeps_adam_state_and_the_restored_run_continues_identically(ray_local, tmp_path, mode_after):
    """Continue the trained algorithm and its restored copy with the same minibatches
    (the buffer is in the checkpoint, its RNG too; torch's seeded alike): the weights
    stay equal, bit for bit, only if Adam's moments and steps came back. 'off': both
    hand the batched learner's Adam state to the per-agent loop, one in memory, the
    other through the checkpoint. (Float32: RLlib's set_weights casts to float32.)"""
    algo = spread_config("on", store_buffer_in_checkpoints=True).build_algo()
    restored = None
    try:
        algo.train()
        algo.train()
        checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        restored = Algorithm.from_checkpoint(checkpoint)
        assert restored.batched is not None
        for a in (algo, restored):
            a.use_batched_update(mode_after)
        assert_same_weights(weights(algo), weights(restored), atol=0)
        for name in ("actor", "critic"):
            steps = {float(s["step"]) for p in restored.policies_by_id().values()
                     for s in p.optimizers[name].state_dict()["state"].values()}
            assert steps == {algo._counters["maddpg_num_update_rounds"]}
        for r in range(3):
            for a in (algo, restored):
                torch.manual_seed(r)
                a.update()
        assert_same_weights(weights(algo), weights(restored), atol=0)
        # A fresh algorithm (no Adam state) on the same weights would have diverged.
        fresh = spread_config("on", store_buffer_in_checkpoints=True).build_algo()
        try:
            fresh.restore(checkpoint)
            fresh.use_batched_update("off")
            for p in fresh.policies_by_id().values():
                for o in p.optimizers.values():
                    o.state.clear()
            fresh.use_batched_update(mode_after)
            for r in range(3):
                torch.manual_seed(r)
                fresh.update()
            with pytest.raises(AssertionError):
                assert_same_weights(weights(algo), weights(fresh), atol=1e-4)
        finally:
            fresh.stop()
    finally:
        algo.stop()
        if restored is not None:
            restored.stop()


def test_setups_it_cannot_batch_fall_back_on_auto_and_are_refused_on_on(ray_local):
    config = (MADDPGConfig().environment(StampEnv).debugging(seed=0).env_runners(num_env_runners=0)
              .update_from_dict(dict(SMALL, num_steps_sampled_before_learning_starts=100)))
    with pytest.raises(ValueError, match="heterogeneous agents.*batched_update='auto'"):
        config.copy(copy_frozen=False).learners(batched_update="on").build_algo()
    algo = config.copy(copy_frozen=False).learners(batched_update="auto").build_algo()
    try:
        assert algo.batched is None
        result = algo.train()
        assert sorted(result["info"]["learner"]) == ["0", "1", "2"]
    finally:
        algo.stop()
    algo = spread_config("auto").build_algo()  # alike agents: batched
    try:
        assert algo.batched is not None
    finally:
        algo.stop()


def test_replaced_tensors_are_noticed_and_the_stacks_rebuilt(ray_local):
    algo = spread_config("on").build_algo()
    try:
        algo.train()
        old = algo.batched
        policy = algo.get_policy("agent_1")
        layer = policy.model.critic[0]
        layer.weight.data = layer.weight.data.clone()  # no longer a view of the stacks
        before = layer.weight.detach().clone()
        algo.update()
        assert algo.batched is not old and algo.batched.acts_for(algo.agent_policies())
        assert not torch.equal(layer.weight, before)  # the round updated the policy's new tensor
    finally:
        algo.stop()


def test_a_replay_mirror_on_the_learners_device_feeds_both_learners_alike(ray_local, float64):
    """A learner on a GPU draws its minibatches from D's mirror on the device
    (core/replay.py; MADDPG.setup mirrors D when the policies sit on a GPU). Here
    the mirror is on the CPU: both learners train from it, to the same weights,
    and every minibatch row is a row D holds."""
    from rllib_maddpg.core import joint as jb

    runs = {}
    for mode in ("off", "on"):
        algo = spread_config(mode).build_algo()
        try:
            assert algo.local_replay_buffer.device is None  # policies on the CPU: no mirror
            algo.local_replay_buffer.mirror_on("cpu")
            results = [algo.train() for _ in range(3)]
            assert results[-1]["counters"]["maddpg_num_update_rounds"] >= 8
            runs[mode] = weights(algo)
            buffer = algo.local_replay_buffer
            buffer.reseed(5)
            batch = algo.minibatch(algo.agent_policies())
            buffer.reseed(5)  # the minibatch is the mirror's draw
            mirror_draw = buffer.sample_tensors(algo.config.train_batch_size)[jb.obs_col(0)]
            assert torch.equal(batch[jb.obs_col(0)], mirror_draw.to(batch[jb.obs_col(0)].dtype))
            held = {tuple(row) for row in buffer._data[jb.obs_col(0)][:len(buffer)].tolist()}
            drawn = batch[jb.obs_col(0)].to(torch.float32).numpy()
            assert {tuple(row) for row in drawn.tolist()} <= held
        finally:
            algo.stop()
    assert_same_weights(runs["off"], runs["on"])
