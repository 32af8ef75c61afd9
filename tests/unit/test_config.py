"""Config loading and validation (torch-free)."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from atheria_cli.config import ExperimentConfig, _safe_load, load_config, resolve_config_path
from atheria_cli.errors import ConfigError
from tests.conftest import tiny_config, write_config


def _error(tmp_path: Path, config: object) -> str:
    path = tmp_path / "c.yaml"
    if isinstance(config, str):
        path.write_text(config)
    else:
        write_config(path, config)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", {"env": {"id": "Pendulum-v1"}, "agents": {"PPO": None, "SAC": {}}})
    config = load_config(path)
    assert config.experiment == "default" and config.checkpoints_dir == "checkpoints" and config.seed == 0
    assert config.device == "auto" and config.env.n_envs == 1 and config.env.metrics == ()
    assert config.train.episodes == 5 and config.train.save_every == 1
    assert config.algo_of("PPO") == "PPO" and config.agents["SAC"].policy == "MlpPolicy"
    assert config.run_dir == Path("checkpoints/default")


def test_algo_defaults_to_name_and_can_differ(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c.yaml", tiny_config({"fast_sac": {"algo": "SAC", "seed": 9}})))
    assert config.algo_of("fast_sac") == "SAC" and config.seed_of("fast_sac") == 9


def test_metrics_accept_names_and_goals(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path / "c.yaml", tiny_config(env={"id": "X-v0", "metrics": ["co2_kg", {"name": "cost", "goal": "min"}]}))
    )
    assert [(m.name, m.goal) for m in config.env.metrics] == [("co2_kg", "max"), ("cost", "min")]


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"agents": {"SAC": {"hyperparams": {}, "lr": 1}}}, "agents.SAC.lr: unknown field"),
        ({"agents": {}}, "agents: Dictionary should have at least 1 item after validation, not 0"),
        ({"agents": {"../x": {"algo": "PPO"}}}, "agent name '../x' must be a folder name"),
        ({"experiment": "a/b"}, "experiment: must be a folder name"),
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"env": {"id": "X", "n_envs": 0}}, "env.n_envs: Input should be greater than 0"),
        ({"env": {"id": "X", "metrics": ["a", "a"]}}, "env.metrics: duplicate metric 'a'"),
        ({"env": {"id": "X", "metrics": ["reward"]}}, "env.metrics: 'reward' is recorded for every episode already"),
        ({"env": {"id": "X", "normalize_kwargs": {"clip": 1}}}, "env.normalize_kwargs: unknown VecNormalize option 'clip'"),
        ({"train": {"save_every": 0}}, "train.save_every: Input should be greater than 0"),
        ({"device": "cuda:a"}, "device: 'cuda:a' is not a device"),
        ({"bogus": 1, "seed": "x"}, "(and 1 more problem)"),
    ],
)
def test_errors_name_the_field_path(tmp_path: Path, override: dict, expected: str) -> None:
    config = tiny_config()
    config.update(override)
    assert expected in _error(tmp_path, config)


def test_yaml_errors(tmp_path: Path) -> None:
    assert _error(tmp_path, "a: [1,\n").startswith("YAML syntax error at line 2")
    assert _error(tmp_path, "- 1\n- 2\n") == "the config must be a YAML mapping, got list"
    assert _error(tmp_path, "") == "the config must be a YAML mapping, got NoneType"


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    message = _error(tmp_path, "experiment: !!python/object/apply:os.system ['touch pwned']\n")
    assert "YAML" in message
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "text",
    ["a: [1,\n", "a: b: c\n", "a:\n\t- 1\n", "a: 'x\n", "a: 1\na: [\n", "x: !!python/name:os.system\n", "\ufeffa: \x07\n"],
)
def test_a_yaml_error_reads_as_pyyaml_s_own_parser_words_it(tmp_path: Path, text: str) -> None:
    # The config is parsed by libyaml where PyYAML has it; a refused document must still get
    # the message, line and column of PyYAML's pure-Python parser.
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        expected = f"YAML syntax error{where}: {exc.problem}"
    except yaml.YAMLError as exc:
        expected = f"YAML error: {exc}"
    assert _error(tmp_path, text) == expected


def test_the_default_config_parses_alike_with_and_without_libyaml() -> None:
    text = (Path(__file__).parents[2] / "atheria_cli" / "config" / "default.yaml").read_text(encoding="utf-8")
    assert _safe_load(text) == yaml.load(text, Loader=yaml.SafeLoader)


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", tiny_config())
    assert load_config(path, {"seed": 5, "device": None}).seed == 5
    with pytest.raises(ConfigError, match="device: 'tpu' is not a device"):
        load_config(path, {"device": "tpu"})


def test_config_resolution_order(tmp_path: Path) -> None:
    explicit = tmp_path / "x.yaml"
    assert resolve_config_path(explicit, tmp_path) == explicit
    assert resolve_config_path(None, tmp_path) is None
    local = write_config(tmp_path / "configs" / "default.yaml", tiny_config())
    assert resolve_config_path(None, tmp_path) == local


def test_packaged_default_is_valid() -> None:
    config = load_config(None)
    assert isinstance(config, ExperimentConfig) and list(config.agents) == ["A2C", "SAC", "PPO"]


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c.yaml", tiny_config()))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.seed = 3  # type: ignore[misc]
