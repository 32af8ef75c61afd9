"""Users' own trainers for the tests of the ``torch`` trainer kind (docs/trainers.md).

:class:`Shuffler` is what a careful user writes: a DataLoader shuffled by its own generator,
dropout (the global torch generator), an LR scheduler and a tensor of its own (``psi``, a
simulation state carried from episode to episode), all in ``state_dict``; with the optional
``evaluate`` (which draws from the global generator too) and ``export_module``. The variants each
break one rule; :class:`Minimal` has the required methods only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader, TensorDataset

from atheria_cli.trainers.stateful import StatefulTrainer


class Shuffler:
    """Fits a small regression with dropout, one pass over a shuffled dataset per episode."""

    def __init__(self, context: Any, hidden: int = 8, lr: float = 0.05, batch: int = 8, samples: int = 48) -> None:
        data = torch.Generator().manual_seed(1234)
        inputs = torch.randn(samples, 4, generator=data)
        targets = inputs.sum(dim=1, keepdim=True) + 0.1 * torch.randn(samples, 1, generator=data)
        self.batch = batch
        self.generator = torch.Generator().manual_seed(context.seed + 1)
        self.loader = DataLoader(TensorDataset(inputs, targets), batch_size=batch, shuffle=True, generator=self.generator)
        self.model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1)).to(context.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)
        self.psi = torch.zeros(4)

    def train_episode(self, episode: int) -> dict[str, float]:
        self.model.train()
        total, seen = 0.0, 0
        for inputs, targets in self.loader:
            loss = functional.mse_loss(self.model(inputs + self.psi), targets)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total, seen = total + loss.item() * len(inputs), seen + len(inputs)
            self.psi.mul_(0.9).add_(0.01 * inputs.mean(dim=0))  # in place: a commit must not alias it
        self.scheduler.step()
        return {"loss": total / seen, "lr": self.scheduler.get_last_lr()[0], "steps": seen // self.batch}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "psi": self.psi,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.psi = state["psi"].clone()

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]:
        """The loss on a held-out set of ``episodes`` batches drawn from ``seed``, dropout off; the
        inputs are jittered from the global generator (atheria seeds it from ``seed``)."""
        held_out = torch.Generator().manual_seed(seed)
        inputs = torch.randn(episodes * self.batch, 4, generator=held_out)
        targets = inputs.sum(dim=1, keepdim=True)
        inputs = inputs + 0.01 * torch.randn_like(inputs)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            loss = functional.mse_loss(self.model(inputs + self.psi), targets).item()
        self.model.train(was_training)
        return {"loss": loss}

    def export_module(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        return self.model, (torch.randn(self.batch, 4, generator=torch.Generator().manual_seed(0)),)


class ForgetsPsi(Shuffler):
    """Leaves its simulation state ``psi`` out of ``state_dict``: a resume restarts it from zero."""

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        del state["psi"]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])


class FailsInEpisode(Shuffler):
    """Raises in episode ``fail_at``."""

    def __init__(self, context: Any, fail_at: int = 3, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.fail_at = fail_at

    def train_episode(self, episode: int) -> dict[str, float]:
        if episode == self.fail_at:
            raise RuntimeError(f"the simulation blew up in episode {episode}")
        return super().train_episode(episode)


class NoLoad:
    """Lacks ``load_state_dict``."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def train_episode(self, episode: int) -> dict[str, float]:
        return {"loss": 1.0 / episode}

    def state_dict(self) -> dict[str, Any]:
        return {}


class RandomSearch:
    """A user's own RL algorithm beside SB3's agents: random search over a linear policy for
    ``tests.envs:EmissionsEnv``, one env episode per training episode. It returns the env's
    ``co2_kg`` (the experiment's main metric) and its own ``reward`` (the episode's return)."""

    def __init__(self, context: Any, scale: float = 0.3) -> None:
        from tests.envs import EmissionsEnv

        self.env, self.scale = EmissionsEnv(), scale
        self.generator = torch.Generator().manual_seed(context.seed)
        self.weights = torch.zeros(2, dtype=torch.float64)
        self.best = float("-inf")

    def train_episode(self, episode: int) -> dict[str, float]:
        candidate = self.weights + self.scale * torch.randn(2, generator=self.generator, dtype=torch.float64)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        observation, _ = self.env.reset(seed=seed)
        total, done, info = 0.0, False, {}
        while not done:
            action = torch.tanh(candidate @ torch.as_tensor(observation, dtype=torch.float64)).numpy().reshape(1)
            observation, reward, terminated, truncated, info = self.env.step(action)
            total, done = total + float(reward), terminated or truncated
        if total > self.best:
            self.weights, self.best = candidate, total
        return {"co2_kg": info["co2_kg"], "reward": total, "steps": self.env.steps}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "best": self.best, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights, self.best = state["weights"].clone(), float(state["best"])
        self.generator.set_state(state["generator"])


class Snapshotter(Shuffler):
    """Shuffler that persists its simulation state with ``train.snapshots``: ``psi`` and the
    episodes it has trained (a tensor, as a simulation's step)."""

    def __init__(self, context: Any, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.episodes = 0

    def train_episode(self, episode: int) -> dict[str, float]:
        self.episodes = episode
        return super().train_episode(episode)

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {"psi": self.psi, "step": torch.tensor(self.episodes)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "episodes": self.episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.episodes = state["episodes"]


class SnapshotsNumpy(Snapshotter):
    """Returns a NumPy array from ``snapshot()``: not plain data, which weights-only loading refuses."""

    def snapshot(self) -> dict[str, Any]:
        return {"psi": self.psi.numpy()}


class SnapshotsNothing(Snapshotter):
    """Defines ``snapshot()`` but returns None from it."""

    def snapshot(self) -> None:  # type: ignore[override]
        return None


class ExportsDropout(Shuffler):
    """Exports a module that keeps dropping out in eval mode: no export can reproduce it."""

    def export_module(self) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        model, examples = super().export_module()
        return AlwaysDropout(model), examples


class AlwaysDropout(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.dropout(self.model(x), 0.5, training=True)


class Minimal:
    """The three required methods only: no ``evaluate``, no ``export_module``."""

    def __init__(self, context: Any) -> None:
        self.count = torch.zeros(())

    def train_episode(self, episode: int) -> dict[str, float]:
        self.count += 1
        return {"loss": 1.0 / float(self.count)}

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = state["count"].clone()


class Declared(StatefulTrainer):
    """:class:`Shuffler`'s training with its state declared by attributes (the base class's
    ``state_dict``): a module, an optimizer, a scheduler, a generator, a tensor and a plain
    counter listed in ``state_attributes``."""

    state_attributes = ("updates",)
    state_excluded = ("inputs", "targets")  # the data: __init__ builds it the same every time

    def __init__(self, context: Any, hidden: int = 8, lr: float = 0.05, batch: int = 8, samples: int = 48) -> None:
        data = torch.Generator().manual_seed(1234)
        self.inputs = torch.randn(samples, 4, generator=data)
        self.targets = self.inputs.sum(dim=1, keepdim=True)
        self.batch = batch
        self.generator = torch.Generator().manual_seed(context.seed + 1)
        self.model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)
        self.psi = torch.zeros(4)
        self.updates = 0

    def train_episode(self, episode: int) -> dict[str, float]:
        total = 0.0
        for indices in torch.randperm(len(self.inputs), generator=self.generator).split(self.batch):
            inputs, targets = self.inputs[indices], self.targets[indices]
            loss = functional.mse_loss(self.model(inputs + self.psi), targets)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total, self.updates = total + loss.item(), self.updates + 1
            self.psi.mul_(0.9).add_(0.01 * inputs.mean(dim=0))
        self.scheduler.step()
        return {"loss": total, "lr": self.scheduler.get_last_lr()[0], "steps": self.updates}
