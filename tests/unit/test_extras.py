"""One function checks every optional extra a training session needs (atheria_cli.extras)."""

from __future__ import annotations

import sys

import pytest

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ConfigError
from atheria_cli.extras import check_extras, required_extras
from tests.conftest import tiny_config

EVERY_EXTRA = tiny_config(
    {"A2C": {}, "T": {"algo": "TQC"}},
    train={"tensorboard": True, "wandb": {"mode": "disabled"}, "mlflow": {}},
)


def test_every_extra_the_config_uses_is_listed_in_config_order() -> None:
    config = ExperimentConfig.model_validate(EVERY_EXTRA)
    assert required_extras(config, backend="ray") == [
        ("agents.T.algo: TQC", "contrib"),
        ("train.tensorboard", "tensorboard"),
        ("train.wandb", "wandb"),
        ("train.mlflow", "mlflow"),
        ("--backend ray", "ray"),
    ]
    assert required_extras(ExperimentConfig.model_validate(tiny_config()), backend="local") == []


@pytest.mark.parametrize(
    "module, message",
    [
        ("sb3_contrib", "agents.T.algo: TQC needs the 'contrib' extra: pip install 'atheria-cli[contrib]'"),
        ("tensorboard", "train.tensorboard needs the 'tensorboard' extra: pip install 'atheria-cli[tensorboard]'"),
        ("wandb", "train.wandb needs the 'wandb' extra: pip install 'atheria-cli[wandb]'"),
        ("mlflow", "train.mlflow needs the 'mlflow' extra: pip install 'atheria-cli[mlflow]'"),
        ("ray", "--backend ray needs the 'ray' extra: pip install 'atheria-cli[ray]'"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_install(module: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ExperimentConfig.model_validate(EVERY_EXTRA)
    check_extras(config, backend="ray")  # all installed here (the test extra)
    monkeypatch.setitem(sys.modules, module, None)  # what Python sees when it is not installed
    with pytest.raises(ConfigError) as caught:
        check_extras(config, backend="ray")
    assert str(caught.value) == message
