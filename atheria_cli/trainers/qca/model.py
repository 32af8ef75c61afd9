"""The QCA's networks and its update step, in the layout a native engine steps.

A quantum cellular automaton here is a complex field ``psi`` of ``d_state`` channels on a
``grid`` x ``grid`` torus. One update reads each cell's neighbourhood through a network and
moves the field by what it proposes::

    x      = complex_to_channels(psi)        # float32 [B, 2*d_state, H, W]: real parts, then imaginary parts
    x_next = bound_cells(x + network(x))     # each cell's amplitude sum_c |psi_c|^2 at most 1

:class:`QCAStep` is that update as an ``nn.Module`` with nothing random in it, so the same
module trains (the trainer adds its noise between steps) and runs elsewhere:
:func:`export_step` gives it in eval mode with example inputs, for ``torch.jit.script``,
``torch.jit.trace``, ``torch.export`` and a C++ engine that loads the TorchScript file.

The networks (:data:`ARCHITECTURES`) map ``[B, 2*d_state, H, W]`` to the same shape with
circular padding (the grid is a torus). Their last layer starts at zero: an untrained step is
the identity, and training moves it away from there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional


def complex_to_channels(psi: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., d_state, H, W]`` -> float ``[..., 2*d_state, H, W]``: the real parts of
    the channels, then their imaginary parts (the layout :class:`QCAStep` reads and writes)."""
    return torch.cat([psi.real, psi.imag], dim=-3)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`complex_to_channels`: float ``[..., 2*d_state, H, W]`` -> complex
    ``[..., d_state, H, W]``."""
    d_state = x.shape[-3] // 2
    return torch.complex(x[..., :d_state, :, :], x[..., d_state:, :, :])


def bound_cells(x: torch.Tensor) -> torch.Tensor:
    """Scale each cell whose amplitude (the sum of its channels' squares, i.e. ``sum_c |psi_c|^2``)
    exceeds 1 back to 1; cells below are left as they are. Keeps a long rollout bounded without
    making the total mass a constant (survival would mean nothing then)."""
    norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
    return x / torch.clamp(norm, min=1.0)


def _conv(inputs: int, outputs: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2, padding_mode="circular")


def _zero(layer: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """The same small MLP applied to every cell's 3x3 neighbourhood (a 3x3 convolution, then
    1x1 layers)."""

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__()
        channels = 2 * d_state
        self.layers = nn.Sequential(
            _conv(channels, hidden_channels, 3),
            nn.ReLU(),
            _conv(hidden_channels, hidden_channels, 1),
            nn.ReLU(),
            _zero(_conv(hidden_channels, channels, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UNet(nn.Module):
    """A two-level UNet: full resolution, one average-pooled level at twice the channels, and a
    skip connection; the grid's side must be even."""

    def __init__(self, d_state: int, hidden_channels: int) -> None:
        super().__init__()
        channels, hidden = 2 * d_state, hidden_channels
        self.encode = nn.Sequential(_conv(channels, hidden, 3), nn.ReLU(), _conv(hidden, hidden, 3), nn.ReLU())
        self.bottom = nn.Sequential(_conv(hidden, 2 * hidden, 3), nn.ReLU(), _conv(2 * hidden, 2 * hidden, 3), nn.ReLU())
        self.decode = nn.Sequential(_conv(3 * hidden, hidden, 3), nn.ReLU())
        self.out = _zero(_conv(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.encode(x)
        low = self.bottom(functional.avg_pool2d(skip, 2))
        up = functional.interpolate(low, scale_factor=2.0, mode="nearest")
        return self.out(self.decode(torch.cat([skip, up], dim=1)))


# Architecture name (the trainer's ``architecture`` kwarg) -> its network class, built with
# (d_state, hidden_channels). A new architecture is one row here.
ARCHITECTURES: dict[str, Callable[[int, int], nn.Module]] = {"unet": UNet, "mlp": MLP}
# What an architecture needs of the grid's side (the UNet pools once).
GRID_MULTIPLE = {"unet": 2, "mlp": 1}


class QCAStep(nn.Module):
    """One QCA update: ``forward(x)`` takes float32 ``[B, 2*d_state, H, W]`` (real parts, then
    imaginary parts) and returns the next state in the same layout. Deterministic: no noise."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bound_cells(x + self.network(x))


def build_step(architecture: str, d_state: int, hidden_channels: int) -> QCAStep:
    """The QCA step with a fresh network of ``architecture`` (a key of :data:`ARCHITECTURES`)."""
    return QCAStep(ARCHITECTURES[architecture](d_state, hidden_channels))


def export_step(step: QCAStep, psi: torch.Tensor) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A copy of ``step`` in eval mode on the CPU, without gradients, and its example input: the
    complex field ``psi`` (``[d_state, H, W]``) as a batch of one in the channel layout."""
    module = copy.deepcopy(step).to("cpu").eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    example = complex_to_channels(psi.detach().to("cpu")).unsqueeze(0).to(torch.float32).contiguous()
    return module, (example,)
