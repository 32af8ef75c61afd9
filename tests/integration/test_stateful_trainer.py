"""The convenience base class :class:`~atheria_cli.trainers.stateful.StatefulTrainer`: a trainer
that declares its state by attributes resumes exactly, and its state survives the first
commit's round-trip check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from atheria_cli.trainers.custom import TrainerContext, cpu_copy
from atheria_cli.trainers.stateful import StatefulTrainer
from tests.integration.helpers import assert_same_tree, episodes, last_payload, train
from tests.trainers import Declared

pytestmark = pytest.mark.integration

CONTEXT = TrainerContext(device="cpu", seed=3, agent="fit")


def declared_config() -> dict[str, Any]:
    return {
        "experiment": "test",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": "tests.trainers:Declared", "metrics": [{"name": "loss", "goal": "min"}, "lr"]}},
        "train": {"allow_import": True},
    }


def _records(root: Path) -> list[dict[str, Any]]:
    return [record.model_dump(exclude={"seconds"}) for record in episodes(root, "fit")]


def test_n_plus_m_equals_n_then_resume_m_with_no_round_trip_warning(tmp_path: Path) -> None:
    one_go = train(declared_config(), tmp_path / "one", episodes=4)
    train(declared_config(), tmp_path / "split", episodes=1)
    resumed = train(declared_config(), tmp_path / "split", episodes=3, resume=True)
    assert one_go.warnings == [] and resumed.warnings == []

    assert _records(tmp_path / "one") == _records(tmp_path / "split")
    assert [record["length"] for record in _records(tmp_path / "one")] == [6, 12, 18, 24]  # updates: a plain attribute
    left, right = last_payload(tmp_path / "one", "fit"), last_payload(tmp_path / "split", "fit")
    assert sorted(left["state"]) == ["generator", "model", "optimizer", "psi", "scheduler", "updates"]
    assert left["state"]["scheduler"]["last_epoch"] == 4 and left["state"]["updates"] == 24
    assert_same_tree(left["state"], right["state"], "state")
    assert_same_tree(left["rng"], right["rng"], "rng")


def test_load_state_dict_restores_every_attribute_into_a_fresh_instance() -> None:
    trained = Declared(CONTEXT)
    for episode in (1, 2, 3):
        trained.train_episode(episode)
    fresh = Declared(CONTEXT)
    parameter = next(fresh.model.parameters())
    fresh.load_state_dict(cpu_copy(trained.state_dict()))  # as atheria captures it

    assert fresh.updates == trained.updates == 18
    assert torch.equal(fresh.psi, trained.psi) and fresh.psi is not trained.psi
    assert torch.equal(fresh.generator.get_state(), trained.generator.get_state())
    assert fresh.scheduler.last_epoch == 3 and fresh.optimizer.param_groups[0]["lr"] == trained.optimizer.param_groups[0]["lr"]
    assert next(fresh.model.parameters()) is parameter  # loaded in place: the optimizer steps the same tensors
    # Both go on identically from here (dropout draws from the global generator: atheria's to restore).
    torch.manual_seed(11)
    theirs = trained.train_episode(4)
    torch.manual_seed(11)
    assert fresh.train_episode(4) == theirs


class WithParameter(StatefulTrainer):
    """A bare ``nn.Parameter`` attribute, an optimizer over it, and a float64 tensor."""

    def __init__(self, context: Any) -> None:
        self.weight = nn.Parameter(torch.zeros(3))
        self.optimizer = torch.optim.SGD([self.weight], lr=0.5)
        self.field = torch.zeros(2, dtype=torch.complex64)

    def train_episode(self, episode: int) -> dict[str, float]:
        loss = ((self.weight - episode) ** 2).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.field = self.field + 1j
        return {"loss": loss.item()}


def test_a_parameter_is_restored_in_place_and_a_tensor_keeps_its_saved_value() -> None:
    trained, fresh = WithParameter(CONTEXT), WithParameter(CONTEXT)
    trained.train_episode(1)
    weight = fresh.weight
    fresh.load_state_dict(cpu_copy(trained.state_dict()))  # as atheria captures it
    assert fresh.weight is weight and torch.equal(weight, trained.weight)
    assert torch.equal(fresh.field, torch.full((2,), 1j, dtype=torch.complex64))
    fresh.train_episode(2)
    trained.train_episode(2)
    assert torch.equal(fresh.weight, trained.weight)  # the optimizer stepped the restored parameter


def test_a_state_without_an_attribute_is_an_error_naming_it() -> None:
    state = Declared(CONTEXT).state_dict()
    del state["psi"]
    with pytest.raises(ValueError, match="the state has no 'psi'"):
        Declared(CONTEXT).load_state_dict(state)


class WithLeaf(StatefulTrainer):
    """An optimizer over a plain leaf tensor (not an ``nn.Parameter``)."""

    def __init__(self, context: Any) -> None:
        self.w = torch.zeros(3, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.w], lr=0.1)

    def train_episode(self, episode: int) -> dict[str, float]:
        loss = ((self.w - torch.tensor([1.0, 2.0, 3.0])) ** 2).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def test_a_leaf_tensor_an_optimizer_steps_is_restored_in_place() -> None:
    # It was replaced by a detached copy: the resumed optimizer stepped the old tensor and w
    # (no longer requiring grad) stopped learning.
    trained, fresh = WithLeaf(CONTEXT), WithLeaf(CONTEXT)
    trained.train_episode(1)
    w = fresh.w
    fresh.load_state_dict(cpu_copy(trained.state_dict()))
    assert fresh.w is w and fresh.w.requires_grad and torch.equal(fresh.w, trained.w)
    for episode in (2, 3):
        assert fresh.train_episode(episode) == trained.train_episode(episode)
    assert torch.equal(fresh.w, trained.w)
