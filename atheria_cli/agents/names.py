"""The algorithm names atheria accepts, the optional extra each one needs, and the activation
and optimizer names it resolves.

Torch-free on purpose: the config validates ``algo`` with this table, and commands that only
read JSON load the config. The classes themselves live in :mod:`atheria_cli.agents.registry`.
"""

from __future__ import annotations

import importlib.util

CORE_ALGORITHMS = ("A2C", "PPO", "SAC", "TD3", "DDPG", "DQN")
CONTRIB_ALGORITHMS = ("TQC", "QRDQN", "TRPO", "CrossQ", "MaskablePPO", "RecurrentPPO")
# Extra name -> the module it installs, and that module's distribution.
EXTRA_MODULES = {"contrib": "sb3_contrib"}
EXTRA_DISTRIBUTIONS = {"contrib": "sb3-contrib"}
# Algorithm name -> the extra it needs (None: part of the core install).
EXTRAS: dict[str, str | None] = {
    **{name: None for name in CORE_ALGORITHMS},
    **{name: "contrib" for name in CONTRIB_ALGORITHMS},
}
ALGORITHMS = tuple(EXTRAS)
# The policy an agent gets when its config names none: SB3's MlpPolicy, except where the
# algorithm has no policy of that name.
DEFAULT_POLICY = "MlpPolicy"
DEFAULT_POLICIES = {**{name: DEFAULT_POLICY for name in ALGORITHMS}, "RecurrentPPO": "MlpLstmPolicy"}
# torch.nn activations and torch.optim optimizers a config (or a zoo string) may name.
ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "SiLU", "GELU", "Sigmoid", "Softplus", "Mish", "SELU")
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")


def missing_extra(algo: str) -> str | None:
    """The extra ``algo`` needs that is not installed, else None (found without importing it)."""
    extra = EXTRAS[algo]
    if extra is None or importlib.util.find_spec(EXTRA_MODULES[extra]) is not None:
        return None
    return extra


def needs_extra_message(algo: str, extra: str) -> str:
    return f"{algo} needs the '{extra}' extra: pip install 'atheria-cli[{extra}]'"


def installed_extra_versions() -> dict[str, str]:
    """Versions of the algorithm extras that are installed (provenance in metadata and checkpoints)."""
    # importlib.metadata costs a torch-free command ~20 ms to import: only training needs it.
    import importlib.metadata

    return {
        EXTRA_MODULES[extra]: importlib.metadata.version(distribution)
        for extra, distribution in EXTRA_DISTRIBUTIONS.items()
        if importlib.util.find_spec(EXTRA_MODULES[extra]) is not None
    }
