"""The joint replay buffer: FIFO ring, uniform sampling, and ensemble sub-buffers."""

import numpy as np
import pytest

from rllib_maddpg.core.replay import JointReplayBuffer

pytestmark = pytest.mark.unit

COLUMNS = {"x": ((2,), np.float32), "k": ((), np.int64)}


def rows(start, n, k=None, seed=0):
    x = np.stack([np.arange(start, start + n)] * 2, -1).astype(np.float32)
    k = np.random.default_rng(seed).integers(0, 3, n) if k is None else np.full(n, k)
    return {"x": x, "k": k}


def test_fifo_ring_keeps_the_newest_rows():
    buf = JointReplayBuffer(5, COLUMNS, seed=0)
    buf.add(rows(0, 3))
    buf.add(rows(3, 4))
    assert len(buf) == 5 and buf.num_added == 7
    assert sorted(buf.sample(200)["x"][:, 0].astype(int).tolist())[0] == 2  # rows 0, 1 gone
    buf.add(rows(7, 12))  # more than the capacity at once
    assert set(buf.sample(500)["x"][:, 0].astype(int)) == set(range(14, 19))


def test_sub_buffers_hold_only_their_rows_and_forget_overwritten_ones():
    buf = JointReplayBuffer(50, COLUMNS, seed=0, subset_columns=["k"])
    data = rows(0, 120, seed=1)
    for start in range(0, 120, 7):
        buf.add({c: v[start:start + 7] for c, v in data.items()})
    newest = data["k"][-50:]
    for k in range(3):
        sample = buf.sample(300, subset=("k", k))
        assert np.all(sample["k"] == k)                        # routed to sub-buffer k only
        assert sample["x"][:, 0].min() >= 70                   # only rows still in the buffer
        assert buf.subset_size("k", k) == int(np.sum(newest == k))
    with pytest.raises(ValueError, match="no rows"):
        buf.sample(3, subset=("k", 7))


def test_state_round_trip_keeps_rows_and_sub_buffers():
    buf = JointReplayBuffer(20, COLUMNS, seed=0, subset_columns=["k"])
    buf.add(rows(0, 33, seed=2))
    again = JointReplayBuffer(20, COLUMNS, seed=5, subset_columns=["k"])
    again.set_state(buf.get_state())
    assert len(again) == 20 and again.num_added == 33
    np.testing.assert_array_equal(again.sample(10)["x"], buf.sample(10)["x"])  # same RNG state
    for k in range(3):
        assert again.subset_size("k", k) == buf.subset_size("k", k)
        assert np.all(again.sample(50, subset=("k", k))["k"] == k)


def test_columns_of_every_shape_and_dtype_come_back_row_aligned():
    """Columns share one storage block per dtype; each sampled row must still
    hold the values added together, whatever the column's shape."""
    columns = {"a": ((3,), np.float32), "r": ((), np.float32), "img": ((2, 3), np.float32),
               "done": ((), np.bool_), "k": ((), np.int64), "m": ((2,), np.int64)}
    buf = JointReplayBuffer(16, columns, seed=0)
    n = np.arange(10)
    buf.add({"a": np.stack([n, n + 1, n + 2], -1).astype(np.float32), "r": -n.astype(np.float32),
             "img": (n[:, None, None] * np.ones((2, 3))).astype(np.float32),
             "done": n % 2 == 0, "k": n * 10, "m": np.stack([n, -n], -1)})
    out = buf.sample(64)
    i = out["k"] // 10
    assert {k: v.shape for k, v in out.items()} == {
        "a": (64, 3), "r": (64,), "img": (64, 2, 3), "done": (64,), "k": (64,), "m": (64, 2)}
    np.testing.assert_array_equal(out["a"], np.stack([i, i + 1, i + 2], -1))
    np.testing.assert_array_equal(out["r"], -i)
    np.testing.assert_array_equal(out["img"], i[:, None, None] * np.ones((2, 3)))
    np.testing.assert_array_equal(out["done"], i % 2 == 0)
    np.testing.assert_array_equal(out["m"], np.stack([i, -i], -1))


def test_mean_std_of_the_rows_held_through_wraparound_and_restore():
    columns = {"r": ((), np.float32), "x": ((2,), np.float32)}
    buf = JointReplayBuffer(50, columns, seed=0, moment_columns=["r"])
    r = np.random.default_rng(3).normal(2.0, 3.0, 137).astype(np.float32)
    held = []
    for start in range(0, 137, 9):  # wraps the ring twice
        chunk = r[start:start + 9]
        buf.add({"r": chunk, "x": np.zeros((len(chunk), 2), np.float32)})
        held = np.concatenate([held, chunk])[-50:]
        mean, std = buf.mean_std("r")
        assert mean == pytest.approx(held.mean(), abs=1e-5)
        assert std == pytest.approx(held.std(), abs=1e-5)
    restored = JointReplayBuffer(50, columns, moment_columns=["r"])
    restored.set_state(buf.get_state())
    assert restored.mean_std("r") == pytest.approx(buf.mean_std("r"), abs=1e-6)


def test_reseed_draws_the_same_minibatches_again():
    buf = JointReplayBuffer(50, COLUMNS, seed=0)
    buf.add(rows(0, 40))
    buf.reseed(7)
    first = [buf.sample(8)["x"] for _ in range(3)]
    buf.reseed(7)
    assert all(np.array_equal(a, buf.sample(8)["x"]) for a in first)
    assert not all(np.array_equal(first[0], b) for b in first[1:])


def test_a_mirror_on_a_device_holds_the_host_rows_through_wraparound_and_restore():
    """mirror_on(device) (a GPU learner's buffer; here the CPU): rows added before and
    after, through the ring's wraparound and a restore, sample row-aligned on the
    device, from the rows the host buffer holds."""
    import torch

    columns = {"a": ((3,), np.float32), "r": ((), np.float32), "img": ((2, 3), np.float32),
               "done": ((), np.bool_), "k": ((), np.int64)}

    def rows_of(n):
        return {"a": np.stack([n, n + 1, n + 2], -1).astype(np.float32), "r": -n.astype(np.float32),
                "img": (n[:, None, None] * np.ones((2, 3))).astype(np.float32),
                "done": n % 2 == 0, "k": n * 10}

    def check(buf, held):
        out = buf.sample_tensors(256)
        assert all(isinstance(v, torch.Tensor) and v.device == buf.device for v in out.values())
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            "a": (256, 3), "r": (256,), "img": (256, 2, 3), "done": (256,), "k": (256,)}
        i = out["k"].numpy() // 10
        assert set(i) == set(held)  # 256 draws from at most 20 rows
        np.testing.assert_array_equal(out["a"].numpy(), np.stack([i, i + 1, i + 2], -1))
        np.testing.assert_array_equal(out["r"].numpy(), -i)
        np.testing.assert_array_equal(out["img"].numpy(), i[:, None, None] * np.ones((2, 3)))
        np.testing.assert_array_equal(out["done"].numpy(), i % 2 == 0)

    buf = JointReplayBuffer(20, columns, seed=0)
    buf.add(rows_of(np.arange(5)))
    buf.mirror_on("cpu")
    assert buf.device == torch.device("cpu")
    check(buf, range(5))
    buf.add(rows_of(np.arange(5, 33)))  # wraps: rows 13..32 held
    check(buf, range(13, 33))
    restored = JointReplayBuffer(20, columns, seed=0)
    restored.mirror_on("cpu")
    restored.set_state(buf.get_state())
    check(restored, range(13, 33))
    buf.reseed(3)
    first = buf.sample_tensors(8)["k"]
    buf.reseed(3)
    assert torch.equal(first, buf.sample_tensors(8)["k"])


def test_sample_tensors_needs_a_mirror():
    buf = JointReplayBuffer(5, COLUMNS, seed=0)
    buf.add(rows(0, 3))
    with pytest.raises(RuntimeError, match="mirror_on"):
        buf.sample_tensors(2)
