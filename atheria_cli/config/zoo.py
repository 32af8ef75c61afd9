"""rl-zoo3 hyperparameter entries by name, read and translated without ``eval``.

``agents.X.zoo: sac/Pendulum-v1`` reads the ``Pendulum-v1`` entry of ``hyperparams/sac.yml``
from an installed ``rl_zoo3`` (found with :func:`importlib.util.find_spec`, never imported:
importing it patches gym and pulls in heavy dependencies); ``zoo: path/to/sac.yml#Pendulum-v1``
reads a file. rl-zoo3 ``eval``s some string values (``policy_kwargs: "dict(net_arch=[400, 300])"``);
atheria parses them with :func:`parse_code`, an allow-list over Python's ``ast``, and maps every
zoo key to atheria's own config fields (:func:`translate_entry`). Torch-free.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atheria_cli.agents.names import ACTIVATIONS, OPTIMIZERS
from atheria_cli.errors import ConfigError

EXTRA_HINT = "pip install 'atheria-cli[zoo]' (or: pip install --no-deps rl-zoo3==2.9.2)"
# The algorithm of an entry follows its file name, as in rl-zoo3.
ALGO_OF_FILE = {
    "a2c": "A2C",
    "ppo": "PPO",
    "sac": "SAC",
    "td3": "TD3",
    "ddpg": "DDPG",
    "dqn": "DQN",
    "qrdqn": "QRDQN",
    "tqc": "TQC",
    "trpo": "TRPO",
    "ars": "ARS",
    "crossq": "CrossQ",
    "ppo_lstm": "RecurrentPPO",
}
# Dotted names a zoo string may use, and the atheria name each stands for.
DOTTED_NAMES: dict[str, str] = {
    **{f"{prefix}.{name}": name for prefix in ("nn", "th.nn", "torch.nn") for name in ACTIVATIONS},
    **{f"{prefix}.{name}": name for prefix in ("optim", "th.optim", "torch.optim") for name in OPTIMIZERS},
}
# Bare names in zoo strings that stand for code to import (a2c/atari's optimizer).
IMPORTABLE_NAMES = {
    "RMSpropTFLike": "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
    "HerReplayBuffer": "stable_baselines3.her.her_replay_buffer.HerReplayBuffer",
}
# Keys whose string values rl-zoo3 evaluates as Python.
CODE_KEYS = frozenset({"policy_kwargs", "normalize", "replay_buffer_kwargs", "env_kwargs", "frame_stack"})
# Keys that name code to import: refused unless train.allow_import.
IMPORT_KEYS = frozenset({"env_wrapper", "vec_env_wrapper", "callback", "replay_buffer_class", "policy"})
ALLOWED_IMPORT_PREFIXES = ("stable_baselines3.", "sb3_contrib.", "gymnasium.wrappers.", "rl_zoo3.wrappers.")
ENV_KEYS = ("n_envs", "normalize", "frame_stack")
NOISE_TYPES = {"normal": "normal", "ornstein-uhlenbeck": "ornstein_uhlenbeck"}


@dataclass(frozen=True)
class NeedsImport:
    """A value that names importable code (``env_wrapper: sb3_contrib.common.wrappers.TimeFeatureWrapper``)."""

    names: tuple[str, ...]
    value: Any  # the value as written (a name, a list, or {name: kwargs})


@dataclass(frozen=True)
class ZooEntry:
    spec: str  # as written: "sac/Pendulum-v1" or "path/to/sac.yml#Pendulum-v1"
    algo: str
    env_id: str
    source: str  # the file read, or "rl_zoo3 2.9.2"
    values: dict[str, Any]


@dataclass
class Translation:
    """An entry in atheria's terms: agent fields and per-agent env settings."""

    algo: str
    policy: str | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    schedule_timesteps: int | None = None


class _Refused(Exception):
    def __init__(self, node: ast.AST, what: str) -> None:
        super().__init__(what)
        self.column = getattr(node, "col_offset", 0) + 1
        self.what = what


def parse_code(text: str, where: str) -> Any:
    """The value of a zoo code string, or :class:`ConfigError` naming ``where`` and the column.

    Accepted: ``dict(key=...)``, list/tuple/dict literals, signed numbers, strings, booleans,
    None and the names of :data:`DOTTED_NAMES`. Everything else (other calls, names, attributes,
    subscripts, comprehensions, lambdas, ``**``) is refused: nothing is evaluated.
    """
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"{where}, column {exc.offset or 1}: not a Python literal ({exc.msg}): {source!r}") from None
    try:
        return _literal(tree.body)
    except _Refused as exc:
        raise ConfigError(
            f"{where}, column {exc.column}: {exc.what} is not allowed (only dict(...), lists, tuples, dicts, "
            f"numbers, strings, True/False/None and names like nn.ReLU): {source!r}"
        ) from None


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise _Refused(node, f"the constant {node.value!r}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if isinstance(operand, ast.Constant) and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
            return -operand.value if isinstance(node.op, ast.USub) else operand.value
        raise _Refused(node, "a sign before something other than a number")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        result = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _Refused(value, "'**' unpacking")
            result[_hashable(key)] = _literal(value)
        return result
    if isinstance(node, ast.Call):
        return _dict_call(node)
    if isinstance(node, (ast.Attribute, ast.Name)):
        dotted = _dotted(node)
        if dotted in DOTTED_NAMES:
            return DOTTED_NAMES[dotted]
        if dotted in IMPORTABLE_NAMES:
            return NeedsImport(names=(IMPORTABLE_NAMES[dotted],), value=dotted)
        kind = "the name" if isinstance(node, ast.Name) else "the attribute"
        raise _Refused(node, f"{kind} {dotted or ast.unparse(node)!r}")
    raise _Refused(node, _describe(node))


def _hashable(node: ast.AST) -> Any:
    key = _literal(node)
    if isinstance(key, (list, dict)):
        raise _Refused(node, "a list or dict as a dict key")
    return key


def _dict_call(node: ast.Call) -> dict[str, Any]:
    if not (isinstance(node.func, ast.Name) and node.func.id == "dict"):
        inner = node.func
        while isinstance(inner, ast.Attribute):
            inner = inner.value
        if isinstance(inner, ast.Call):  # __import__('os').system(...): report the first call made
            return _dict_call(inner)
        name = _dotted(node.func) or ast.unparse(node.func)
        raise _Refused(node, f"a call to {name!r}")
    if node.args:
        raise _Refused(node.args[0], "a positional argument to dict()")
    result = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise _Refused(keyword.value, "'**' unpacking")
        result[keyword.arg] = _literal(keyword.value)
    return result


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.Subscript: "a subscript",
        ast.ListComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.Starred: "'*' unpacking",
        ast.BinOp: "an operator",
        ast.BoolOp: "an operator",
        ast.Compare: "a comparison",
        ast.JoinedStr: "an f-string",
        ast.Set: "a set",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment expression",
    }
    return names.get(type(node), f"a {type(node).__name__} expression")


def translate_value(key: str, value: Any, where: str) -> Any:
    """One zoo value in atheria's terms (strings of code parsed, ``lin_X`` a linear schedule,
    names of code a :class:`NeedsImport`); every string value of the zoo goes through here."""
    if key in IMPORT_KEYS:
        names = tuple(IMPORTABLE_NAMES.get(name, name) for name in _import_names(value))
        if key == "policy" and not any("." in name for name in names):
            return value  # "MlpPolicy": a policy SB3 resolves by name
        return NeedsImport(names=names, value=value)
    if isinstance(value, str) and value.startswith("lin_"):
        start = value.removeprefix("lin_")
        try:
            return {"schedule": "linear", "start": float(start), "end": 0.0, "end_fraction": 1.0}
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not lin_<number>") from None
    if key in CODE_KEYS and isinstance(value, str):
        return parse_code(value, where)
    return value


def _import_names(value: Any) -> tuple[str, ...]:
    """The dotted names in ``name``, ``[name, {name: kwargs}, ...]`` or ``{name: kwargs}``."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        return tuple(str(name) for name in value)
    if isinstance(value, list):
        return tuple(name for item in value for name in _import_names(item))
    return (repr(value),)


def entry_env_id(spec: str) -> str:
    """The env id an entry is tuned for: after ``#`` in ``file.yml#EnvId``, else after ``/``."""
    return spec.rpartition("#")[2] if "#" in spec else spec.partition("/")[2]


def read_entry(spec: str, base_dir: Path | None = None) -> ZooEntry:
    """The entry ``spec`` names: ``algo/EnvId`` (installed rl_zoo3) or ``file.yml#EnvId``."""
    if "#" in spec:
        file_part, env_id = spec.rpartition("#")[0], entry_env_id(spec)
        path = Path(file_part).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"zoo {spec!r}: file not found: {path}")
        stem = path.stem
    else:
        stem, slash, env_id = spec.partition("/")
        if not slash or not stem or not env_id:
            raise ConfigError(f"zoo {spec!r}: expected ALGO/ENV_ID (e.g. sac/Pendulum-v1) or FILE.yml#ENV_ID")
        path, version = _installed_file(spec, stem)
        source = f"rl_zoo3 {version}"
    algo = ALGO_OF_FILE.get(stem.lower())
    if algo is None:
        raise ConfigError(f"zoo {spec!r}: no algorithm for file {stem!r} (known: {', '.join(sorted(ALGO_OF_FILE))})")
    entries = _read_yaml(path, spec)
    values = entries.get(env_id)
    if not isinstance(values, dict):
        close = difflib.get_close_matches(env_id, [str(name) for name in entries], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"zoo {spec!r}: {path.name} has no entry {env_id!r}{hint}")
    return ZooEntry(spec=spec, algo=algo, env_id=env_id, source=source, values=dict(values))


def algo_without_the_zoo(spec: Any) -> str | None:
    """For an ``algo/EnvId`` entry while rl_zoo3 is not installed: the algorithm its file name
    gives, without the entry (what a reading command needs of it); None otherwise."""
    if not isinstance(spec, str) or "#" in spec or zoo_hyperparams_dir() is not None:
        return None
    return ALGO_OF_FILE.get(spec.partition("/")[0].lower())


def zoo_hyperparams_dir() -> tuple[Path, str] | None:
    """The installed rl_zoo3's ``hyperparams`` folder and version, without importing rl_zoo3."""
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "hyperparams"
    from importlib import metadata  # here: importing it costs every config load ~20 ms

    try:
        version = metadata.version("rl_zoo3")
    except metadata.PackageNotFoundError:
        version = "unknown version"
    return folder, version


def _installed_file(spec: str, stem: str) -> tuple[Path, str]:
    found = zoo_hyperparams_dir()
    if found is None:
        raise ConfigError(f"zoo {spec!r}: reading rl-zoo3 entries by name needs the 'zoo' extra: {EXTRA_HINT}")
    folder, version = found
    path = folder / f"{stem}.yml"
    if not path.is_file():
        known = sorted(item.stem for item in folder.glob("*.yml"))
        raise ConfigError(f"zoo {spec!r}: rl_zoo3 {version} has no {stem}.yml (files: {', '.join(known)})")
    return path, version


def _read_yaml(path: Path, spec: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"zoo {spec!r}: cannot read {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"zoo {spec!r}: {path} is not a mapping of environment ids to entries")
    return loaded


def translate_entry(entry: ZooEntry, *, allow_import: bool) -> Translation:
    """Map every key of ``entry`` to atheria's fields; raise :class:`ConfigError` for what atheria
    cannot apply (code to import, HER's model_class)."""
    result = Translation(algo=entry.algo)
    noise: dict[str, Any] = {}
    for key, raw in entry.values.items():
        where = f"zoo {entry.spec}: {key}"
        value = translate_value(key, raw, where)
        nested = _nested_import(value)
        if nested is not None:
            _refuse_import(where, key, nested, allow_import)
            raise ConfigError(f"{where}: {nested.value} names code atheria does not resolve (only torch.nn/torch.optim classes)")
        if isinstance(value, NeedsImport):
            _refuse_import(where, key, value, allow_import)
            value = raw  # only a dotted policy passes: the registry imports it
        if key == "policy":
            result.policy = value
        elif key == "n_timesteps":
            result.schedule_timesteps = int(float(value))
        elif key == "n_envs":
            result.env["n_envs"] = value
        elif key == "frame_stack":
            result.env["frame_stack"] = value
        elif key == "normalize":
            _normalize(where, value, result.env)
        elif key in ("noise_type", "noise_std"):
            noise[key] = value
        elif key == "model_class":
            raise ConfigError(f"{where}: HER entries (model_class) are not supported")
        else:
            result.hyperparams[key] = value
    if noise:
        result.hyperparams["action_noise"] = _action_noise(f"zoo {entry.spec}", noise)
    return result


def _nested_import(value: Any) -> NeedsImport | None:
    """A :class:`NeedsImport` inside a parsed dict or list (not the value itself)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = item if isinstance(item, NeedsImport) else _nested_import(item)
        if found is not None:
            return found
    return None


def _normalize(where: str, value: Any, env: dict[str, Any]) -> None:
    if isinstance(value, bool):
        env["normalize"] = value
    elif isinstance(value, dict):
        env["normalize"] = True
        env["normalize_kwargs"] = dict(value)
    else:
        raise ConfigError(f"{where}: expected true/false or a dict of VecNormalize options (got {value!r})")


def _action_noise(where: str, noise: dict[str, Any]) -> dict[str, Any]:
    kind = noise.get("noise_type")
    if kind not in NOISE_TYPES:
        raise ConfigError(f"{where}: noise_type must be one of {', '.join(NOISE_TYPES)} (got {kind!r})")
    return {"type": NOISE_TYPES[kind], "sigma": noise.get("noise_std", 0.1)}


def _refuse_import(where: str, key: str, value: NeedsImport, allow_import: bool) -> None:
    names = ", ".join(value.names)
    if not allow_import:
        raise ConfigError(f"{where}: names code to import ({names}); refused unless --allow-import (train.allow_import: true)")
    outside = [name for name in value.names if not name.startswith(ALLOWED_IMPORT_PREFIXES)]
    if outside:
        raise ConfigError(f"{where}: {outside[0]} is outside the importable prefixes ({', '.join(ALLOWED_IMPORT_PREFIXES)})")
    if key == "policy":
        return  # applied by the registry, which imports the class; a policy class holds no env state
    raise ConfigError(
        f"{where}: atheria cannot capture the state of {names} in a checkpoint, so a resumed run would not "
        "continue exactly; this key is not supported"
    )


def resolve_agent(
    name: str, agent: dict[str, Any], *, base_dir: Path | None, allow_import: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The raw agent mapping with its zoo entry filled in (the agent's own keys win), and the
    entry's origin ``{entry, source}`` for metadata.json."""
    spec = agent["zoo"]
    if not isinstance(spec, str):
        raise ConfigError(f"zoo: expected ALGO/ENV_ID or FILE.yml#ENV_ID (got {spec!r})")
    entry = read_entry(spec, base_dir)
    translation = translate_entry(entry, allow_import=allow_import)
    given_algo = agent.get("algo")
    if given_algo is not None and given_algo != translation.algo:
        raise ConfigError(f"algo: {given_algo!r} differs from the zoo entry's {translation.algo!r} ({spec})")
    resolved = dict(agent)
    resolved["algo"] = translation.algo
    if translation.policy is not None and "policy" not in agent:
        resolved["policy"] = translation.policy
    resolved["hyperparams"] = {**translation.hyperparams, **_mapping(agent.get("hyperparams"))}
    if translation.env or agent.get("env"):
        resolved["env"] = {**translation.env, **_mapping(agent.get("env"))}
    if translation.schedule_timesteps is not None and agent.get("schedule_timesteps") is None:
        resolved["schedule_timesteps"] = translation.schedule_timesteps
    return resolved, {"entry": spec, "source": entry.source}


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
