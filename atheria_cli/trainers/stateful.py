"""A base class that declares a trainer's state by its attributes (docs/trainers.md).

A user's trainer (the ``torch`` kind, :mod:`atheria_cli.trainers.custom`) must return from
``state_dict()`` everything that decides the future of its training, and most of it is the same
every time: its networks, optimizers, LR schedulers, generators and tensors. A subclass of
:class:`StatefulTrainer` writes only ``__init__`` and ``train_episode``; its ``state_dict()``
collects those attributes by name, and ``state_attributes`` lists the plain values (a step
counter, a list of recent scores) that belong in it too::

    class MyTrainer(StatefulTrainer):
        state_attributes = ("step",)

        def __init__(self, context, lr=1e-3): ...   # self.model, self.optimizer, self.psi, self.step = 0
        def train_episode(self, episode): ...

Torch is imported here: a trainer module imports it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

# The kinds of attribute collected by type, in the order load_state_dict restores them
# (networks before the optimizers that step their parameters).
_STATEFUL_TYPES: tuple[type, ...] = (nn.Module, torch.optim.Optimizer, LRScheduler, ReduceLROnPlateau)
# How other programs' checkpoints name an attribute's state: {"model_state_dict": ..., "episode": 12}.
FOREIGN_SUFFIX = "_state_dict"


class StatefulTrainer:
    """A trainer whose ``state_dict()`` is its attributes (see the module docstring).

    Collected by type, under the attribute's name: every ``nn.Module``, ``torch.optim.Optimizer``
    and LR scheduler (their own ``state_dict()``), ``torch.Generator`` (``get_state()``) and
    ``torch.Tensor``; plus the attributes named in :attr:`state_attributes`, whatever their type
    (plain values: numbers, strings, lists, dicts; atheria loads checkpoints weights-only).

    ``load_state_dict()`` restores them into the instance ``__init__`` built: modules, optimizers
    and schedulers through their ``load_state_dict()``, generators through ``set_state()``, an
    ``nn.Parameter`` in place (an optimizer holds it), any other tensor replaced by the saved one
    on the device the attribute's tensor is on; a name the state lacks is a ``ValueError``.
    """

    # Plain attributes that belong in the state as well: a step counter, a best score.
    state_attributes: ClassVar[tuple[str, ...]] = ()
    # Attributes of a collected type to leave out (a frozen pretrained network, a lookup table
    # that __init__ rebuilds the same every time).
    state_excluded: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        """Every stateful attribute's state by its name, then the :attr:`state_attributes`."""
        state = {name: _capture(value) for name, value in self._stateful_attributes().items()}
        for name in self.state_attributes:
            state[name] = getattr(self, name)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` captured into this instance."""
        attributes = self._stateful_attributes()
        missing = [name for name in [*attributes, *self.state_attributes] if name not in state]
        if missing:
            raise ValueError(f"the state has no {missing[0]!r} (saved by another version of {type(self).__name__}?)")
        for name, value in sorted(attributes.items(), key=lambda item: _restore_order(item[1])):
            replacement = _restore(value, state[name])
            if replacement is not None:
                setattr(self, name, replacement)
        for name in self.state_attributes:
            setattr(self, name, state[name])

    def load_foreign_checkpoint(self, checkpoint: Mapping[str, Any]) -> list[str]:
        """Load what fits of another program's checkpoint (``train --from-checkpoint FILE.pth``):
        each ``<name>_state_dict`` entry into the module, optimizer or scheduler attribute
        ``<name>`` (``model_state_dict`` into ``self.model``, ``optimizer_state_dict`` into
        ``self.optimizer``). Returns the attributes loaded; the rest keep the values ``__init__``
        gave them. A state dict that does not fit its attribute raises (``RuntimeError``,
        ``ValueError``, ``KeyError``)."""
        attributes = self._stateful_attributes()
        loadable = sorted(
            (name for name in attributes if isinstance(attributes[name], _STATEFUL_TYPES)),
            key=lambda name: _restore_order(attributes[name]),
        )
        loaded = []
        for name in loadable:
            saved = checkpoint.get(f"{name}{FOREIGN_SUFFIX}")
            if saved is not None:
                attributes[name].load_state_dict(saved)
                loaded.append(name)
        return loaded

    def _stateful_attributes(self) -> dict[str, Any]:
        """The instance's attributes collected by type, by name (less :attr:`state_excluded` and
        the :attr:`state_attributes`, which are saved as they are)."""
        skipped = {*self.state_excluded, *self.state_attributes}
        return {
            name: value
            for name, value in vars(self).items()
            if name not in skipped and isinstance(value, (*_STATEFUL_TYPES, torch.Generator, torch.Tensor))
        }


def _capture(value: Any) -> Any:
    if isinstance(value, torch.Generator):
        return value.get_state()
    if isinstance(value, torch.Tensor):
        return value  # atheria detaches and copies it to the CPU at the commit
    state_dict: Callable[[], Any] = value.state_dict
    return state_dict()


def _restore_order(value: Any) -> int:
    kinds = (*_STATEFUL_TYPES, torch.Generator, torch.Tensor)
    return next(index for index, kind in enumerate(kinds) if isinstance(value, kind))


def _restore(current: Any, saved: Any) -> torch.Tensor | None:
    """Load ``saved`` into ``current``; a tensor to put in its place, else None."""
    if isinstance(current, torch.Generator):
        current.set_state(saved)
    elif isinstance(current, nn.Parameter) or (
        isinstance(current, torch.Tensor) and current.shape == saved.shape and current.dtype == saved.dtype and _writable(current)
    ):
        with torch.no_grad():
            current.copy_(saved)  # in place: an optimizer may step this very tensor (a Parameter, a leaf it was given)
    elif isinstance(current, torch.Tensor):
        # Another shape (a field resized by the trainer) or dtype: a new tensor, as it was saved.
        return saved.detach().to(current.device, copy=True).requires_grad_(current.requires_grad)
    else:
        current.load_state_dict(saved)
    return None


def _writable(tensor: torch.Tensor) -> bool:
    """Whether ``copy_`` can write every element (not an expanded view sharing memory)."""
    return all(stride != 0 or size == 1 for stride, size in zip(tensor.stride(), tensor.shape, strict=True))
