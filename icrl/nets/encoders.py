"""Timestep encoder: one timestep's observation dict -> one d_model vector (ARCHITECTURE §4).

Every key of the (flat, TrialWrapper) observation space except `time` is turned into features:
- `Discrete(n, start)` (integers)           -> one-hot of size n;
- `MultiDiscrete(nvec, start)`              -> concatenated one-hots, size sum(nvec);
- `MultiBinary`, `Box` (any shape)          -> flattened float;
- `Box` images (3-D, uint8)                 -> small CNN (`image="cnn"`, default) or flattened / 255;
- `prev_reward`                             -> the raw reward and symlog(reward) = sign(r) log(1 + |r|):
  the raw value keeps exact small rewards, the symlog copy keeps large or drifting reward scales in a
  range an MLP handles (a cheap, robust alternative to running normalisation statistics).
Integer observations outside their range (e.g. zero-padded positions with a nonzero `start`) are
clamped into range rather than raising.
The features are concatenated in a fixed order (sorted keys) and fed to an MLP
(Linear -> LayerNorm -> leaky ReLU per hidden layer) and a final Linear to d_model.

Nested Dict spaces are flattened with "." (as the TrialWrapper does); the observation dict may be flat
("obs.pos") or nested. Keys of the observation dict that are not in the space (e.g. `time`, `action`,
`mask` of a training batch) are ignored. Inputs may have any leading batch dims: (B, L, ...) or (B, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTION_MASK_KEY = "obs.action_mask"
"""The valid-action mask (K,) of a multi-task env whose tasks have different Discrete sizes (1 = valid; see
icrl.envs.multitask). The agent's Discrete action kind applies it to the actor's logits; it is not an input
feature (with a task id or in-context inference the policy already knows the task, and masking is exact)."""
EXCLUDED_KEYS = ("time", ACTION_MASK_KEY)


def symlog(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def flatten_dict_space(space: gym.Space, prefix: str = "") -> Iterator[tuple[str, gym.Space]]:
    """(name, leaf space) pairs of a possibly nested Dict space, names joined with '.'."""
    if isinstance(space, gym.spaces.Dict):
        for key, sub in space.spaces.items():
            yield from flatten_dict_space(sub, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    else:
        yield prefix, space


def _lookup(obs: Mapping, key: str) -> Tensor:
    if key in obs:
        return obs[key]
    node = obs
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"observation dict has no key {key!r} (keys: {sorted(obs)})")
        node = node[part]
    return node


def is_image_space(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


class ImageCNN(nn.Module):
    """uint8 image (..., H, W, C) or (..., C, H, W) -> (..., out_dim).

    Large images (min side >= 36) use the DQN stack (8x8/4, 4x4/2, 3x3/1). Small ones (grid views such as
    MiniGrid's 7x7) use the grid-world stack of 2x2 convolutions with 16, 32, 64 channels and one 2x2
    max-pool, each layer only while the map is at least 2 wide: for 7x7 it ends at 1x1x64. Three 3x3
    stride-1 convolutions of 32-64 channels cost 140x more (3.5M multiply-adds per 7x7 view against 25k)
    and made a MiniGrid update take about a second on one CPU core.
    """

    def __init__(
        self, shape: tuple[int, int, int], out_dim: int = 256, leak: float = 0.01, small: str = "grid"
    ):
        super().__init__()
        self.shape = tuple(shape)
        self.channels_last = not shape[0] <= 4 < shape[-1]  # (C, H, W) only if C is first and small
        c, h, w = (shape[2], shape[0], shape[1]) if self.channels_last else shape
        if min(h, w) >= 36:
            layers = _atari_stack(c, leak)
        elif small == "grid":
            layers = _grid_stack(c, min(h, w), leak)
        elif small == "deep":
            layers = _deep_stack(c, leak)
        else:
            raise ValueError(f"small image CNN must be 'grid' or 'deep', got {small!r}")
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, c, h, w)).shape[-1]
        self.out = nn.Linear(n_flat, out_dim)
        self.out_dim = out_dim

    def forward(self, img: Tensor) -> Tensor:
        lead = img.shape[:-3]
        x = img.reshape(-1, *self.shape).float() / 255.0
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.out(self.convs(x)).reshape(*lead, self.out_dim)


def _atari_stack(channels: int, leak: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for c_in, c_out, k, s in [(channels, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)]:
        layers += [nn.Conv2d(c_in, c_out, k, s, padding=0 if s > 1 else 1), nn.LeakyReLU(leak)]
    return layers


def _deep_stack(channels: int, leak: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for c_in, c_out in [(channels, 32), (32, 64), (64, 64)]:
        layers += [nn.Conv2d(c_in, c_out, 3, 1, padding=1), nn.LeakyReLU(leak)]
    return layers


def _grid_stack(channels: int, side: int, leak: float) -> list[nn.Module]:
    """2x2 convolutions (16, 32, 64 channels) with a 2x2 max-pool after the first, each while the map is at
    least 2 wide (`side`: the image's shorter side); at least the first convolution (1x1 for a 1-wide
    image)."""
    first = min(side, 2)
    layers: list[nn.Module] = [nn.Conv2d(channels, 16, first), nn.LeakyReLU(leak)]
    side, c_in = side - first + 1, 16
    if side >= 4:
        layers.append(nn.MaxPool2d(2))
        side //= 2
    for c_out in (32, 64):
        if side < 2:
            break
        layers += [nn.Conv2d(c_in, c_out, 2), nn.LeakyReLU(leak)]
        side, c_in = side - 1, c_out
    return layers


class TimestepEncoder(nn.Module):
    """obs dict of tensors (B, L, ...) -> (B, L, d_model)."""

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        d_model: int = 128,
        hidden: Sequence[int] = (256,),
        *,
        image: str = "cnn",
        cnn_dim: int = 256,
        small_image_cnn: str = "grid",
        leak: float = 0.01,
        exclude: Sequence[str] = EXCLUDED_KEYS,
    ):
        super().__init__()
        if not isinstance(obs_space, gym.spaces.Dict):
            raise TypeError(f"TimestepEncoder expects a gymnasium Dict space, got {obs_space}")
        if image not in ("cnn", "flatten"):
            raise ValueError(f"image must be 'cnn' or 'flatten', got {image!r}")
        self.d_model = d_model
        self.specs: list[tuple[str, str, tuple[int, ...], int]] = []  # (key, kind, event shape, size)
        self.cnns = nn.ModuleDict()
        for key, space in sorted(flatten_dict_space(obs_space)):
            if key in exclude:
                continue
            if isinstance(space, gym.spaces.Discrete):
                self.register_buffer(_buf(key, "start"), torch.tensor(int(space.start)), persistent=False)
                self.specs.append((key, "discrete", (), int(space.n)))
            elif isinstance(space, gym.spaces.MultiDiscrete):
                nvec = torch.as_tensor(space.nvec, dtype=torch.long).reshape(-1)
                start = torch.as_tensor(getattr(space, "start", np.zeros_like(space.nvec)), dtype=torch.long)
                offsets = torch.cumsum(nvec, 0) - nvec
                self.register_buffer(_buf(key, "nvec"), nvec, persistent=False)
                self.register_buffer(_buf(key, "start"), start.reshape(-1), persistent=False)
                self.register_buffer(_buf(key, "offsets"), offsets, persistent=False)
                self.specs.append((key, "multidiscrete", tuple(space.shape), int(nvec.sum())))
            elif is_image_space(space) and image == "cnn":
                self.cnns[_buf(key, "cnn")] = ImageCNN(space.shape, cnn_dim, leak, small_image_cnn)
                self.specs.append((key, "image", tuple(space.shape), cnn_dim))
            elif isinstance(space, gym.spaces.Box | gym.spaces.MultiBinary):
                size = int(np.prod(space.shape))
                kind = "image_flat" if is_image_space(space) else "flat"
                if key == "prev_reward":
                    kind, size = "reward", 2 * size
                self.specs.append((key, kind, tuple(space.shape), size))
            else:
                raise NotImplementedError(
                    f"TimestepEncoder cannot encode observation key {key!r} with space {space}: supported "
                    "are Box, Discrete, MultiDiscrete, MultiBinary and (nested) Dict of those"
                )
        if not self.specs:
            raise ValueError(f"no observation keys to encode in {obs_space}")
        self.in_features = in_features = sum(spec[3] for spec in self.specs)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.LeakyReLU(leak)]
            width = h
        layers.append(nn.Linear(width, d_model))
        self.mlp = nn.Sequential(*layers)

    @property
    def keys(self) -> list[str]:
        """Observation keys encoded, in feature order."""
        return [spec[0] for spec in self.specs]

    def features(self, obs: Mapping[str, Tensor]) -> Tensor:
        """Concatenated per-key features (..., in_features), before the MLP."""
        parts = []
        for key, kind, shape, size in self.specs:
            x = torch.as_tensor(_lookup(obs, key))
            lead = x.shape[: x.dim() - len(shape)]
            if kind == "discrete":
                idx = (x.long() - getattr(self, _buf(key, "start"))).clamp(0, size - 1)
                parts.append(F.one_hot(idx, size).to(torch.float32))
            elif kind == "multidiscrete":
                nvec = getattr(self, _buf(key, "nvec"))
                idx = x.long().reshape(*lead, -1) - getattr(self, _buf(key, "start"))
                idx = torch.minimum(idx.clamp_min(0), nvec - 1) + getattr(self, _buf(key, "offsets"))
                onehot = torch.zeros(*lead, size, device=x.device)
                parts.append(onehot.scatter_(-1, idx, 1.0))
            elif kind == "image":
                parts.append(self.cnns[_buf(key, "cnn")](x))
            elif kind == "reward":
                r = x.reshape(*lead, -1).to(torch.float32)
                parts += [r, symlog(r)]
            elif kind == "image_flat":
                parts.append(x.reshape(*lead, -1).to(torch.float32) / 255.0)
            else:
                parts.append(x.reshape(*lead, -1).to(torch.float32))
        return torch.cat(parts, dim=-1)

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        return self.mlp(self.features(obs))  # (B, L, d_model)


def _buf(key: str, what: str) -> str:
    """Module attribute names cannot contain '.'."""
    return f"_{what}__" + key.replace(".", "__")
