"""``policy_kwargs`` are checked against the policy class each algorithm builds, without building it."""

from __future__ import annotations

import pytest

from atheria_cli.agents.names import ALGORITHMS, CONTRIB_ALGORITHMS
from atheria_cli.agents.registry import algorithm_class, policy_parameters, validate_hyperparams
from atheria_cli.errors import ConfigError


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_policy_refuses_an_unknown_keyword_and_names_the_closest(algo: str) -> None:
    # Each policy the algorithm names: MlpPolicy, CnnPolicy, MultiInputPolicy, MlpLstmPolicy, ...
    if algo in CONTRIB_ALGORITHMS:
        pytest.importorskip("sb3_contrib")
    for policy in algorithm_class(algo).policy_aliases.values():
        given = validate_hyperparams("X", algo, {"policy_kwargs": {"net_arch": [4]}}, 1, policy=policy)
        assert given["policy_kwargs"] == {"net_arch": [4]}
        with pytest.raises(ConfigError) as caught:
            validate_hyperparams("X", algo, {"policy_kwargs": {"net_archx": [4]}}, 1, policy=policy)
        assert str(caught.value).startswith(
            f"agents.X.hyperparams.policy_kwargs.net_archx: {policy.__name__} does not accept 'net_archx' "
            "(did you mean 'net_arch'? accepted: "
        )


def test_keywords_a_constructor_passes_on_are_found_up_the_mro() -> None:
    # CnnPolicy's and MultiInputPolicy's constructors name their own arguments; a subclass that
    # only forwards **kwargs still accepts its base class's.
    from stable_baselines3.common.policies import ActorCriticPolicy

    class Forwarding(ActorCriticPolicy):
        def __init__(self, *args: object, extra_width: int = 3, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    assert {"extra_width", "net_arch", "ortho_init", "log_std_init"} <= set(policy_parameters(Forwarding))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"net_arch": "big"}, "policy_kwargs.net_arch: Input should be a valid list (got 'big')"),
        ({"net_arch": [16, -4]}, "policy_kwargs.net_arch: layer widths must be at least 1 (got [16, -4])"),
        (
            {"log_std_init": "high"},
            "policy_kwargs.log_std_init: Input should be a valid number, unable to parse string as a number",
        ),
        ({"use_sde": True}, "policy_kwargs.use_sde: set by the use_sde hyperparameter, not a policy keyword argument"),
    ],
)
def test_policy_keyword_values_are_checked_against_the_constructors_hints(kwargs: dict, message: str) -> None:
    policy = algorithm_class("PPO").policy_aliases["MlpPolicy"]
    with pytest.raises(ConfigError) as caught:
        validate_hyperparams("X", "PPO", {"policy_kwargs": kwargs}, 1, policy=policy)
    assert str(caught.value).startswith(f"agents.X.hyperparams.{message}")


@pytest.mark.parametrize("algo", ["SAC", "TQC"])
def test_a_learning_rate_schedule_is_accepted_where_the_hint_is_a_bare_callable(algo: str) -> None:
    # TQC annotates learning_rate as Union[float, Callable], without its argument types: its
    # rl-zoo3 entries with lin_ schedules were refused ("this hyperparameter takes no schedule").
    if algo in CONTRIB_ALGORITHMS:
        pytest.importorskip("sb3_contrib")
    schedule = {"schedule": "linear", "start": 1e-3, "end": 0.0}
    given = validate_hyperparams("X", algo, {"learning_rate": schedule}, 1)
    assert given["learning_rate"](1.0) == 1e-3 and given["learning_rate"](0.0) == 0.0
