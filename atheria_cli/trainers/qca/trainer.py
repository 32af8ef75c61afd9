"""``trainer: atheria/qca``: train a QCA update step, one episode of ``qca_steps`` updates at a time.

The simulation lives on across episodes: each episode starts from the field ``psi`` where the
last one left it (reseeded only when it has died out), runs ``qca_steps`` updates of
:class:`~atheria_cli.trainers.qca.model.QCAStep` with the curriculum's noise added before each,
scores the final field and takes one Adam step on ``-combined_metric``, backpropagating through
every update of the episode. The scores, on the density ``rho(x) = sum_c |psi_c(x)|^2`` (each
cell's at most 1, see :func:`~atheria_cli.trainers.qca.model.bound_cells`):

- ``survival = max(0, 1 - |sum rho_end / sum rho_start - 1|)``: how well the episode kept the
  mass it started with (a quantum evolution keeps it): 1 when it ends with the same mass, 0 when
  the field has died out or doubled;
- ``symmetry = 1 - sum |rho - mirror(rho)| / (2 sum rho)``: 1 for a field equal to its
  left-right mirror image, 0 for one with no overlap;
- ``complexity = (sum |rho(x+1,y) - rho(x,y)| + sum |rho(x,y+1) - rho(x,y)|) / (4 sum rho)`` on
  the torus: the density's total variation per unit of mass, 0 for a uniform field, 1 for a
  checkerboard;
- ``combined_metric``: their average weighted by ``survival_weight``, ``symmetry_weight`` and
  ``complexity_weight``.

Noise: a Gaussian of standard deviation ``noise(e) = noise_max * min(1, (e - 1) / noise_warmup)``
on every real and imaginary part before each update of episode ``e`` (none in episode 1, the full
``noise_max`` from episode ``noise_warmup + 1`` on; ``noise_warmup: 0`` is ``noise_max`` always),
drawn from the trainer's own generator. The field, the simulation step counter, the network,
Adam, its StepLR schedule and the generator are the checkpoint's state
(:class:`~atheria_cli.trainers.stateful.StatefulTrainer`): a resume goes on bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from atheria_cli.errors import ConfigError
from atheria_cli.trainers.qca.model import ARCHITECTURES, GRID_MULTIPLE, QCAStep, build_step, export_step
from atheria_cli.trainers.stateful import StatefulTrainer

DEAD = 1e-6  # a field whose mass per cell falls below this is reseeded at the next episode's start
SEED_DENSITY = 0.25  # a fresh field's mean density per cell (the bound is 1)
_EPSILON = 1e-12  # keeps the ratios finite on an empty field


@dataclass(frozen=True)
class QCASettings:
    """The trainer's kwargs, checked (see :class:`QCATrainer` for their meaning)."""

    architecture: str
    d_state: int
    hidden_channels: int
    grid_size: int
    qca_steps: int
    lr: float
    lr_step: int
    lr_gamma: float
    noise_max: float
    noise_warmup: int
    survival_weight: float
    symmetry_weight: float
    complexity_weight: float
    grad_clip: float


def check_settings(agent: str, settings: QCASettings) -> None:
    """Each kwarg in its range; raises :class:`ConfigError` naming ``agents.X.kwargs.<name>``."""
    where = f"agents.{agent}.kwargs"
    if settings.architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ConfigError(
            f"{where}.architecture: {settings.architecture!r} is not an architecture of atheria/qca (known: {known})"
        )
    for name in ("d_state", "hidden_channels", "grid_size", "qca_steps", "lr_step"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{name}: must be a positive integer, got {value!r}")
    for name in ("lr", "lr_gamma", "noise_max", "survival_weight", "symmetry_weight", "complexity_weight", "grad_clip"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(f"{where}.{name}: must be a number >= 0, got {value!r}")
    if isinstance(settings.noise_warmup, bool) or not isinstance(settings.noise_warmup, int) or settings.noise_warmup < 0:
        raise ConfigError(f"{where}.noise_warmup: must be an integer >= 0, got {settings.noise_warmup!r}")
    multiple = GRID_MULTIPLE[settings.architecture]
    if settings.grid_size % multiple:
        raise ConfigError(
            f"{where}.grid_size: the {settings.architecture} architecture needs a multiple of {multiple}, got {settings.grid_size}"
        )
    if settings.survival_weight + settings.symmetry_weight + settings.complexity_weight <= 0:
        raise ConfigError(f"{where}: survival_weight, symmetry_weight and complexity_weight cannot all be 0")


def noise_level(settings: QCASettings, episode: int) -> float:
    """The curriculum: the noise's standard deviation in ``episode`` (1, 2, ...)."""
    if settings.noise_warmup == 0:
        return settings.noise_max
    return settings.noise_max * min(1.0, (episode - 1) / settings.noise_warmup)


def scores(start: torch.Tensor, end: torch.Tensor) -> dict[str, torch.Tensor]:
    """Survival, symmetry and complexity (the module docstring's formulas) of a rollout from
    ``start`` to ``end``, both ``[1, 2*d_state, H, W]``; differentiable in ``end``."""
    rho_start, rho = torch.sum(start * start, dim=1), torch.sum(end * end, dim=1)
    mass = torch.sum(rho) + _EPSILON
    survival = torch.clamp(1.0 - torch.abs(mass / (torch.sum(rho_start) + _EPSILON) - 1.0), min=0.0)
    symmetry = 1.0 - torch.sum(torch.abs(rho - torch.flip(rho, dims=[-1]))) / (2.0 * mass)
    variation = torch.sum(torch.abs(torch.roll(rho, 1, dims=-1) - rho)) + torch.sum(torch.abs(torch.roll(rho, 1, dims=-2) - rho))
    return {"survival": survival, "symmetry": symmetry, "complexity": variation / (4.0 * mass)}


class QCATrainer(StatefulTrainer):
    """The built-in QCA trainer (the module docstring says what it computes).

    :param architecture: the network (``unet`` or ``mlp``, :data:`~atheria_cli.trainers.qca.model.ARCHITECTURES`;
        case does not matter); seed 002's ``MODEL_ARCHITECTURE``
    :param d_state: complex channels of the field (``MODEL_PARAMS.d_state``)
    :param hidden_channels: the network's width (``MODEL_PARAMS.hidden_channels``)
    :param grid_size: the torus' side, in cells (``GRID_SIZE_TRAINING``)
    :param qca_steps: QCA updates per episode (``QCA_STEPS_TRAINING``)
    :param lr: Adam's learning rate (``LR_RATE_M``), multiplied by ``lr_gamma`` every ``lr_step`` episodes
    :param noise_max: the curriculum's final noise level, reached after ``noise_warmup`` episodes
    :param grad_clip: the gradient's largest norm (0: not clipped)
    """

    state_attributes = ("step",)

    def __init__(
        self,
        context: Any,
        architecture: str = "unet",
        d_state: int = 4,
        hidden_channels: int = 16,
        grid_size: int = 32,
        qca_steps: int = 50,
        lr: float = 1e-4,
        lr_step: int = 100,
        lr_gamma: float = 0.5,
        noise_max: float = 0.05,
        noise_warmup: int = 100,
        survival_weight: float = 1.0,
        symmetry_weight: float = 1.0,
        complexity_weight: float = 1.0,
        grad_clip: float = 1.0,
    ) -> None:
        arguments = dict(locals())  # the kwargs by name, as QCASettings names its fields
        if isinstance(architecture, str):
            arguments["architecture"] = architecture.lower()  # seed 002 writes UNET, MLP
        self.settings = QCASettings(**{field.name: arguments[field.name] for field in fields(QCASettings)})
        check_settings(context.agent, self.settings)
        architecture = self.settings.architecture
        self.device = torch.device(context.device)
        self.generator = torch.Generator(device=self.device).manual_seed(context.seed)
        self.model: QCAStep = build_step(architecture, d_state, hidden_channels).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=lr_step, gamma=lr_gamma)
        self.psi = self._seed_field()
        self.step = 0  # QCA updates simulated so far

    def _seed_field(self) -> torch.Tensor:
        """A fresh complex field ``[d_state, H, W]``: independent Gaussian real and imaginary parts
        scaled so that a cell's density is 0.25 on average (a quarter of its bound), each cell bounded."""
        side, d_state = self.settings.grid_size, self.settings.d_state
        deviation = (SEED_DENSITY / (2 * d_state)) ** 0.5
        parts = deviation * torch.randn(2, d_state, side, side, generator=self.generator, device=self.device)
        field = torch.complex(parts[0], parts[1])
        amplitude = torch.sqrt(torch.sum(field.abs() ** 2, dim=0, keepdim=True))
        return field / torch.clamp(amplitude, min=1.0)

    def train_episode(self, episode: int) -> dict[str, float]:
        """``qca_steps`` noisy updates from where the field is, one optimizer step on their score."""
        if torch.mean(torch.sum(self.psi.abs() ** 2, dim=0)) < DEAD:
            self.psi = self._seed_field()  # a dead field teaches nothing
        noise = noise_level(self.settings, episode)
        self.model.train()
        start = torch.cat([self.psi.real, self.psi.imag]).unsqueeze(0)
        state = start
        for _ in range(self.settings.qca_steps):
            if noise > 0:
                state = state + noise * torch.randn(state.shape, generator=self.generator, device=self.device)
            state = self.model(state)
        values = scores(start, state)
        combined = self._combine(values)
        self._optimize(-combined)
        end = state.detach()[0]
        self.psi = torch.complex(end[: self.settings.d_state], end[self.settings.d_state :])
        self.step += self.settings.qca_steps
        return {
            "combined_metric": combined.item(),
            **{name: value.item() for name, value in values.items()},
            "noise": noise,
            "lr": float(self.scheduler.get_last_lr()[0]),
            "steps": self.settings.qca_steps,
        }

    def _combine(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = {
            "survival": self.settings.survival_weight,
            "symmetry": self.settings.symmetry_weight,
            "complexity": self.settings.complexity_weight,
        }
        return sum((weights[name] * values[name] for name in weights), torch.zeros((), device=self.device)) / sum(
            weights.values()
        )

    def _optimize(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.scheduler.step()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """The simulation as it is now: the field and its step counter."""
        return {"psi": self.psi.detach().clone(), "step": torch.tensor(self.step)}

    def export_module(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """The QCA update step (no noise, eval mode, CPU) and the current field as its example input."""
        return export_step(self.model, self.psi)
