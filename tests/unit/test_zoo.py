"""rl-zoo3 entries: the restricted parser, the entry reader and the key mapping (torch-free)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from atheria_cli.config import load_config
from atheria_cli.config.zoo import (
    NeedsImport,
    parse_code,
    read_entry,
    translate_entry,
    translate_value,
    zoo_hyperparams_dir,
)
from atheria_cli.errors import ConfigError
from tests.conftest import write_config

INSTALLED = zoo_hyperparams_dir()
needs_zoo = pytest.mark.skipif(INSTALLED is None, reason="rl_zoo3 is not installed (pip install 'atheria-cli[zoo]')")


def _strings(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [item for inner in value.values() for item in _strings(inner)]
    if isinstance(value, list):
        return [item for inner in value for item in _strings(inner)]
    return []


def _installed_string_values() -> list[tuple[str, str, Any]]:
    assert INSTALLED is not None
    folder, _ = INSTALLED
    found = []
    for path in sorted(folder.glob("*.yml")):
        for env_id, entry in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            for key, value in entry.items():
                if _strings(value):
                    found.append((f"{path.stem}/{env_id}", key, value))
    return found


@needs_zoo
def test_every_string_value_of_the_installed_zoo_translates() -> None:
    values = _installed_string_values()
    assert len(values) > 500  # rl_zoo3 2.9.2 holds 636 string values: the walk reached them all
    kinds = {"import": 0, "parsed": 0}
    for entry, key, value in values:
        translated = translate_value(key, value, f"{entry}: {key}")
        if isinstance(translated, NeedsImport):
            kinds["import"] += 1
            assert all("." in name for name in translated.names)
        elif key in ("policy_kwargs", "normalize", "replay_buffer_kwargs") and isinstance(value, str):
            kinds["parsed"] += 1
            assert isinstance(translated, (dict, bool))
    assert kinds["import"] >= 20 and kinds["parsed"] >= 150


@needs_zoo
def test_the_a2c_atari_optimizer_parses_into_a_needs_import_form() -> None:
    parsed = parse_code("dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))", "e: policy_kwargs")
    assert parsed["optimizer_class"] == NeedsImport(
        names=("stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",), value="RMSpropTFLike"
    )
    assert parsed["optimizer_kwargs"] == {"eps": 1e-5}


def test_literals_parse_without_eval() -> None:
    text = (
        "dict(net_arch=dict(pi=[64, 64], vf=[64]), activation_fn=nn.ReLU, log_std_init=-2.5, ortho_init=False, "
        "x=None, t=(1, +2), d={'a': th.nn.Tanh})"
    )
    assert parse_code(text, "w") == {
        "net_arch": {"pi": [64, 64], "vf": [64]},
        "activation_fn": "ReLU",
        "log_std_init": -2.5,
        "ortho_init": False,
        "x": None,
        "t": (1, 2),
        "d": {"a": "Tanh"},
    }


HOSTILE = {
    "__import__('os').system('rm -rf /')": ("column 1", "a call to '__import__'"),
    "dict(a=__import__('os'))": ("column 8", "a call to '__import__'"),
    "os.system": ("column 1", "the attribute 'os.system'"),
    "nn.modules.activation.ReLU": ("column 1", "the attribute 'nn.modules.activation.ReLU'"),
    "dict(net_arch=[x for x in range(3)])": ("column 15", "a comprehension"),
    "dict(**{'a': 1})": ("column 8", "'**' unpacking"),
    "{**base, 'a': 1}": ("column 4", "'**' unpacking"),
    "lambda: 0": ("column 1", "a lambda"),
    "dict(a=[1, 2][0])": ("column 8", "a subscript"),
    "dict(a=open)": ("column 8", "the name 'open'"),
    "getattr(nn, 'ReLU')": ("column 1", "a call to 'getattr'"),
    "dict(a=1 + 2)": ("column 8", "an operator"),
    "dict(a=-nn.ReLU)": ("column 8", "a sign before something other than a number"),
    "dict(a=f'{x}')": ("column 8", "an f-string"),
    "dict(a={1, 2})": ("column 8", "a set"),
    "dict([('a', 1)])": ("column 6", "a positional argument"),
    "dict(a=b'x')": ("column 8", "the constant b'x'"),
    "dict(a=(yield))": ("column 9", "a Yield expression"),
    "dict(a=1; import os)": ("column", "not a Python literal"),
}


@pytest.mark.parametrize("text", list(HOSTILE))
def test_hostile_strings_are_refused_naming_the_key_and_column(text: str) -> None:
    column, what = HOSTILE[text]
    with pytest.raises(ConfigError) as caught:
        parse_code(text, "zoo sac/Pendulum-v1: policy_kwargs")
    message = str(caught.value)
    assert message.startswith("zoo sac/Pendulum-v1: policy_kwargs, column") and column in message and what in message


def test_lin_strings_become_linear_schedules() -> None:
    assert translate_value("learning_rate", "lin_7.3e-4", "w") == {
        "schedule": "linear",
        "start": 7.3e-4,
        "end": 0.0,
        "end_fraction": 1.0,
    }
    with pytest.raises(ConfigError, match="is not lin_<number>"):
        translate_value("clip_range", "lin_fast", "w")


@needs_zoo
@pytest.mark.parametrize(
    ("spec", "algo", "horizon", "hyperparams", "env"),
    [
        ("sac/Pendulum-v1", "SAC", 20_000, {"learning_rate": 1e-3}, {}),
        (
            "td3/Pendulum-v1",
            "TD3",
            20_000,
            {"policy_kwargs": {"net_arch": [400, 300]}, "action_noise": {"type": "normal", "sigma": 0.1}},
            {},
        ),
        (
            "ppo/CartPole-v1",
            "PPO",
            100_000,
            {"learning_rate": {"schedule": "linear", "start": 0.001, "end": 0.0, "end_fraction": 1.0}},
            {"n_envs": 8},
        ),
        ("dqn/CartPole-v1", "DQN", 50_000, {"policy_kwargs": {"net_arch": [256, 256]}, "exploration_fraction": 0.16}, {}),
        ("ppo/MountainCarContinuous-v0", "PPO", 20_000, {"use_sde": True}, {"normalize": True}),
        (
            "ars/Pendulum-v1",
            "ARS",
            2_000_000,
            {},
            {"n_envs": 1, "normalize": True, "normalize_kwargs": {"norm_obs": True, "norm_reward": False}},
        ),
    ],
)
def test_the_zoo_entries_map_to_atheria_fields(spec: str, algo: str, horizon: int, hyperparams: dict, env: dict) -> None:
    translation = translate_entry(read_entry(spec), allow_import=False)
    assert translation.algo == algo and translation.schedule_timesteps == horizon and translation.policy == "MlpPolicy"
    assert hyperparams.items() <= translation.hyperparams.items()
    assert env.items() <= translation.env.items()
    assert not {"n_timesteps", "n_envs", "normalize", "noise_type", "noise_std", "policy"} & set(translation.hyperparams)


ENTRY_FILE = """
Pendulum-v1:
  n_timesteps: 3000
  policy: 'MlpPolicy'
  n_envs: 2
  frame_stack: 3
  normalize: "dict(norm_obs=True, norm_reward=False)"
  noise_type: 'ornstein-uhlenbeck'
  noise_std: 0.5
  train_freq: [1, "episode"]
  learning_rate: lin_1e-3
  policy_kwargs: "dict(net_arch=[400, 300], activation_fn=nn.Tanh)"
Wrapped-v0:
  env_wrapper:
    - sb3_contrib.common.wrappers.TimeFeatureWrapper
  policy: 'MlpPolicy'
Callback-v0:
  callback: my_package.callbacks.Evil
Dotted-v0:
  policy: 'stable_baselines3.td3.policies.MlpPolicy'
Hostile-v0:
  policy_kwargs: "dict(net_arch=__import__('os').listdir('.'))"
"""


def _config(tmp_path: Path, agent: dict[str, Any], **train: Any) -> Path:
    (tmp_path / "zoo").mkdir(exist_ok=True)
    (tmp_path / "zoo" / "td3.yml").write_text(ENTRY_FILE, encoding="utf-8")
    return write_config(tmp_path / "c.yaml", {"env": {"id": "Pendulum-v1"}, "agents": {"fast": agent}, "train": train})


def test_an_entry_from_a_file_fills_the_agent_and_its_own_keys_win(tmp_path: Path) -> None:
    agent = {"zoo": "zoo/td3.yml#Pendulum-v1", "hyperparams": {"learning_rate": 0.01}, "env": {"n_envs": 1}}
    config = load_config(_config(tmp_path, agent))
    fast = config.agents["fast"]
    assert config.algo_of("fast") == "TD3" and config.schedule_timesteps_of("fast") == 3000
    assert fast.hyperparams == {
        "train_freq": [1, "episode"],
        "learning_rate": 0.01,
        "policy_kwargs": {"net_arch": [400, 300], "activation_fn": "Tanh"},
        "action_noise": {"type": "ornstein_uhlenbeck", "sigma": 0.5},
    }
    env = config.env_of("fast")
    assert (env.n_envs, env.frame_stack, env.normalize, env.normalize_kwargs) == (
        1,
        3,
        True,
        {"norm_obs": True, "norm_reward": False},
    )
    assert config.env.n_envs == 1 and config.env.frame_stack is None  # the experiment's own env is untouched
    assert config.zoo_origin("fast") == {"entry": "zoo/td3.yml#Pendulum-v1", "source": str(tmp_path / "zoo" / "td3.yml")}


@pytest.mark.parametrize(
    ("entry", "train", "message"),
    [
        (
            "Wrapped-v0",
            {},
            "env_wrapper: names code to import (sb3_contrib.common.wrappers.TimeFeatureWrapper); refused unless --allow-import",
        ),
        ("Wrapped-v0", {"allow_import": True}, "cannot capture the state of sb3_contrib.common.wrappers.TimeFeatureWrapper"),
        ("Callback-v0", {"allow_import": True}, "my_package.callbacks.Evil is outside the importable prefixes"),
        ("Dotted-v0", {}, "policy: names code to import (stable_baselines3.td3.policies.MlpPolicy)"),
        ("Hostile-v0", {}, "policy_kwargs, column 15: a call to '__import__' is not allowed"),
    ],
)
def test_entries_that_name_code_are_refused(tmp_path: Path, entry: str, train: dict, message: str) -> None:
    path = _config(tmp_path, {"zoo": f"zoo/td3.yml#{entry}"}, **train)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: agents.fast.zoo zoo/td3.yml#{entry}: ") and message in str(caught.value)


def test_a_dotted_policy_under_an_allowed_prefix_passes_with_allow_import(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"zoo": "zoo/td3.yml#Dotted-v0"}), {"train.allow_import": True})
    assert config.agents["fast"].policy == "stable_baselines3.td3.policies.MlpPolicy" and config.train.allow_import


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sac", "expected ALGO/ENV_ID (e.g. sac/Pendulum-v1) or FILE.yml#ENV_ID"),
        ("zoo/td3.yml#Pendulum-v2", "td3.yml has no entry 'Pendulum-v2' (did you mean Pendulum-v1?)"),
        ("zoo/missing.yml#Pendulum-v1", "file not found"),
    ],
)
def test_bad_specs_are_refused(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_config(_config(tmp_path, {"zoo": spec}))


def test_an_algo_that_contradicts_the_entry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="algo: 'SAC' differs from the zoo entry's 'TD3'"):
        load_config(_config(tmp_path, {"zoo": "zoo/td3.yml#Pendulum-v1", "algo": "SAC"}))


def test_without_rl_zoo3_a_named_entry_asks_for_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "rl_zoo3" else real(name, *rest))
    with pytest.raises(ConfigError, match=r"needs the 'zoo' extra: pip install 'atheria-cli\[zoo\]'"):
        load_config(_config(tmp_path, {"zoo": "sac/Pendulum-v1"}))


def test_without_rl_zoo3_the_reading_commands_still_load_a_named_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # history, status and compare load with check_extras=False: the algorithm, from the file name, is all they need.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "rl_zoo3" else real(name, *rest))
    config = load_config(
        write_config(tmp_path / "c.yaml", {"env": {"id": "Pendulum-v1"}, "agents": {"expert": {"zoo": "tqc/Pendulum-v1"}}}),
        check_extras=False,
    )
    assert config.algo_of("expert") == "TQC" and config.zoo_origin("expert") is None
    with pytest.raises(ConfigError, match="file not found"):  # an entry from a file is read as ever
        load_config(_config(tmp_path, {"zoo": "zoo/missing.yml#Pendulum-v1"}), check_extras=False)


def test_an_agent_env_overrides_the_experiment_env(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.yaml",
        {
            "env": {"id": "Pendulum-v1", "n_envs": 4, "normalize": True},
            "agents": {"SAC": {"env": {"normalize": False, "frame_stack": 2}}, "PPO": {}},
        },
    )
    config = load_config(path)
    assert (config.env_of("SAC").n_envs, config.env_of("SAC").normalize, config.env_of("SAC").frame_stack) == (4, False, 2)
    assert config.env_of("PPO") == config.env
    with pytest.raises(ConfigError, match="agents.SAC.env.normalize_kwargs: unknown VecNormalize option 'scale'"):
        load_config(
            write_config(
                tmp_path / "d.yaml",
                {"env": {"id": "Pendulum-v1"}, "agents": {"SAC": {"env": {"normalize_kwargs": {"scale": 1}}}}},
            )
        )


@needs_zoo
def test_reading_an_installed_entry_never_imports_rl_zoo3() -> None:
    code = (
        "import sys\n"
        "from atheria_cli.config.zoo import read_entry\n"
        "read_entry('sac/Pendulum-v1')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('rl_zoo3', 'torch', 'gymnasium', 'gym'))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
