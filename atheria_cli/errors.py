"""Domain errors. Only the CLI layer turns them into messages and exit codes."""

from __future__ import annotations


class AtheriaError(Exception):
    """Base of every error atheria reports to its user (exit code 1 unless overridden)."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(AtheriaError):
    """The user's input (command line, config, existing files) cannot be used; nothing was written."""

    exit_code = 2


class ConfigError(InputError):
    """The experiment config is missing, unreadable or invalid."""


class UsageError(InputError):
    """Command-line options that cannot be combined or that name things that do not exist."""


class RunExistsError(InputError):
    """Training would overwrite an existing run."""


class DeviceError(InputError):
    """The requested torch device is not available."""


class DamagedFileError(InputError):
    """A file of a run cannot be read or does not match its schema."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class MetricError(InputError):
    """A configured metric is missing from the environment's final info dict."""


class ExportError(AtheriaError):
    """An export failed its verification (the file is not written)."""


class RunLockedError(InputError):
    """Another process is training the same agent."""


class ConfigDriftError(InputError):
    """A resume whose config differs from the run's stored config."""


class StorageError(AtheriaError):
    """A file could not be written (disk full, permissions); what was committed before is intact."""


class TrainerFailedError(AtheriaError):
    """A user's trainer raised while training (``train_episode``): a run failure, not bad input;
    what was committed before is intact."""


class TrainingDivergedError(AtheriaError):
    """The model's numbers stopped being finite mid-training (NaN or infinite actions): a run
    failure, not bad input found at planning; what was committed before is intact."""


class ClusterError(AtheriaError):
    """A part of the Ray cluster that the run needs died for good; what was committed is intact."""


def not_accepted(where: str, owner: str, key: str, accepted: list[str]) -> ConfigError:
    """``key`` is no keyword argument of ``owner``: say which are, and the closest one."""
    import difflib

    accepted = sorted(accepted)
    close = difflib.get_close_matches(key, accepted, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"{where}: {owner} does not accept {key!r} ({hint}accepted: {', '.join(accepted)})")
