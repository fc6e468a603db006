"""TimestepEncoder: every observation key of the TrialWrapper's Dict space except `time`."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from icrl.nets.encoders import ImageCNN, TimestepEncoder, symlog

S = gym.spaces


def trial_space(**obs_keys) -> S.Dict:
    return S.Dict(
        {
            **obs_keys,
            "prev_action": S.Box(-1, 1, (2,), np.float32),
            "prev_reward": S.Box(-np.inf, np.inf, (1,), np.float32),
            "time": S.Box(0, 2**31 - 1, (), np.int64),
            "first": S.Box(0, 1, (1,), np.float32),
        }
    )


def sample_batch(space: S.Dict, lead=(3, 4)) -> dict[str, torch.Tensor]:
    n = int(np.prod(lead))
    out = {}
    for key, sub in space.spaces.items():
        rows = np.stack([sub.sample() for _ in range(n)])
        out[key] = torch.as_tensor(rows).reshape(*lead, *np.shape(rows[0]))
    return out


def test_all_space_kinds_features_and_shapes():
    space = trial_space(
        **{
            "obs.pos": S.Box(-5, 5, (2, 2), np.float32),
            "obs.dir": S.Discrete(4, start=1),
            "obs.grid": S.MultiDiscrete(np.array([[3, 2], [2, 4]])),
            "obs.bits": S.MultiBinary(3),
        }
    )
    enc = TimestepEncoder(space, d_model=16, hidden=(32,))
    assert enc.keys == ["first", "obs.bits", "obs.dir", "obs.grid", "obs.pos", "prev_action", "prev_reward"]
    assert enc.in_features == 1 + 3 + 4 + (3 + 2 + 2 + 4) + 4 + 2 + 2
    obs = sample_batch(space)
    obs["obs.dir"][0, 0] = 3
    obs["obs.grid"][0, 0] = torch.tensor([[2, 0], [1, 3]])
    obs["prev_reward"][0, 0] = torch.tensor([-20.0])
    obs["unknown"] = torch.randn(7)  # unknown keys (and `time`) are ignored
    feats = enc.features(obs)
    assert feats.shape == (3, 4, enc.in_features)
    f = feats[0, 0]
    torch.testing.assert_close(f[4:8], torch.tensor([0.0, 0.0, 1.0, 0.0]))  # Discrete start=1, value 3
    torch.testing.assert_close(f[8:19], torch.tensor([0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1.0]))
    torch.testing.assert_close(f[1:4], obs["obs.bits"][0, 0].float())
    torch.testing.assert_close(f[19:23], obs["obs.pos"][0, 0].reshape(-1))
    torch.testing.assert_close(f[-2:], torch.tensor([-20.0, -float(np.log(21.0))]))
    assert enc(obs).shape == (3, 4, 16)
    # leading dims are free: (B, ...) works as well
    one_step = {k: v[:, 0] for k, v in obs.items() if k != "unknown"}
    torch.testing.assert_close(enc(one_step), enc(obs)[:, 0])


def test_nested_dict_spaces_are_flattened_and_obs_may_be_nested():
    inner = S.Dict({"pos": S.Box(-1, 1, (3,), np.float32), "door": S.Discrete(2)})
    space = trial_space(obs=inner)
    enc = TimestepEncoder(space, d_model=8)
    assert "obs.pos" in enc.keys and "obs.door" in enc.keys
    flat = {
        "obs.pos": torch.randn(2, 3),
        "obs.door": torch.tensor([0, 1]),
        "prev_action": torch.zeros(2, 2),
        "prev_reward": torch.zeros(2, 1),
        "first": torch.ones(2, 1),
    }
    nested = {k: v for k, v in flat.items() if not k.startswith("obs.")}
    nested["obs"] = {"pos": flat["obs.pos"], "door": flat["obs.door"]}
    torch.testing.assert_close(enc(flat), enc(nested))
    with pytest.raises(KeyError):
        enc({k: v for k, v in flat.items() if k != "obs.pos"})


def test_zero_padding_with_nonzero_start_is_clamped():
    space = trial_space(obs=S.Discrete(3, start=5))
    enc = TimestepEncoder(space, d_model=8)
    obs = sample_batch(space)
    obs["obs"][:, -1] = 0  # right padding carries zeros
    assert torch.isfinite(enc(obs)).all()


@pytest.mark.parametrize("shape", [(7, 7, 3), (3, 40, 40), (48, 48, 1)])
def test_image_observations_use_a_cnn(shape):
    space = trial_space(obs=S.Box(0, 255, shape, np.uint8))
    enc = TimestepEncoder(space, d_model=16, cnn_dim=32)
    assert enc.in_features == 32 + 2 + 2 + 1
    obs = sample_batch(space, lead=(2, 3))
    y = enc(obs)
    assert y.shape == (2, 3, 16)
    y.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    flat = TimestepEncoder(space, d_model=16, image="flatten")
    assert flat.in_features == int(np.prod(shape)) + 5
    assert flat(obs).shape == (2, 3, 16)


@pytest.mark.parametrize("side", [1, 2, 3, 5, 7, 9, 20, 35])
def test_small_images_get_the_grid_stack_down_to_a_small_map(side):
    cnn = ImageCNN((side, side, 3), out_dim=8)
    convs = [layer for layer in cnn.convs if isinstance(layer, nn.Conv2d)]
    kernel = (1, 1) if side == 1 else (2, 2)  # a 1-wide image: one 1x1 convolution
    assert all(conv.kernel_size == kernel for conv in convs) and 1 <= len(convs) <= 3
    assert [conv.out_channels for conv in convs] == [16, 32, 64][: len(convs)]
    flat = cnn.out.in_features
    assert flat % convs[-1].out_channels == 0
    map_side = int(math.isqrt(flat // convs[-1].out_channels))
    # it stops shrinking once the map is 1 wide, or when it has run out of layers
    assert map_side == 1 or len(convs) == 3
    img = torch.randint(0, 255, (4, side, side, 3), dtype=torch.uint8)
    assert cnn(img).shape == (4, 8)
    wide = ImageCNN((side, 5, 3), out_dim=8)  # the shorter side decides
    assert wide(torch.randint(0, 255, (4, side, 5, 3), dtype=torch.uint8)).shape == (4, 8)


def test_the_grid_stack_is_far_cheaper_than_the_deep_one_on_a_7x7_view():
    grid, deep = ImageCNN((7, 7, 3), 256), ImageCNN((7, 7, 3), 256, small="deep")
    assert grid.out.in_features == 64 and deep.out.in_features == 64 * 7 * 7
    params = [sum(p.numel() for p in m.parameters()) for m in (grid, deep)]
    assert params[1] > 25 * params[0]
    big = [ImageCNN((84, 84, 3), 32, small=small).out.in_features for small in ("grid", "deep")]
    assert big == [64 * 9 * 9] * 2  # large images keep the DQN stack whatever `small` says
    with pytest.raises(ValueError, match="'grid' or 'deep'"):
        ImageCNN((7, 7, 3), small="wide")


def test_unsupported_space_raises_clear_error():
    space = trial_space(obs=S.Text(5))
    with pytest.raises(NotImplementedError, match="obs"):
        TimestepEncoder(space, d_model=8)


def test_gradients_flow_and_symlog():
    space = trial_space(obs=S.Box(-1, 1, (5,), np.float32))
    enc = TimestepEncoder(space, d_model=8, hidden=(16, 16))
    enc(sample_batch(space)).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    x = torch.tensor([-3.0, 0.0, 2.0])
    torch.testing.assert_close(symlog(x), torch.tensor([-np.log(4.0), 0.0, np.log(3.0)], dtype=torch.float32))
