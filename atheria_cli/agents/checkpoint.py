"""Write and read ``episode_XXXX.pt`` (layout documented in :mod:`atheria_cli.run.formats`)."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.formats import CHECKPOINT_FORMAT, CHECKPOINT_SCHEMA_VERSION, check_checkpoint_header


def encode_checkpoint(payload: dict[str, Any]) -> bytes:
    document = plain({"format": CHECKPOINT_FORMAT, "schema_version": CHECKPOINT_SCHEMA_VERSION, **payload})
    buffer = io.BytesIO()
    torch.save(document, buffer)
    return buffer.getvalue()


def read_checkpoint(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: a file carrying pickled code is refused,
    never executed. With ``expected_sha256``, a file that changed since its commit is refused."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DamagedFileError(path, "checkpoint file is missing") from None
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise DamagedFileError(path, "sha256 differs from the one recorded in metadata.json (file changed or truncated)")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if "WeightsUnpickler error" in line), "unsafe content")
        raise DamagedFileError(path, f"refused, it is not plain weights and data: {reason}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise DamagedFileError(path, f"unreadable checkpoint: {type(exc).__name__}: {exc}") from None
    check_checkpoint_header(payload, path)
    return payload


_PLAIN_SCALARS = (bool, int, float, str, bytes, type(None))


def plain(value: Any) -> Any:
    """The payload with only what ``weights_only`` loads: tensors, plain scalars and containers.

    NumPy scalars and ``str`` subclasses (``torch.__version__``) are converted; anything else is
    a programming error, reported here rather than as an unloadable file later.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    for scalar in _PLAIN_SCALARS:
        if isinstance(value, scalar):
            return scalar(value) if scalar is not type(None) else None
    raise TypeError(f"checkpoint payload holds a {type(value).__name__}, which weights_only loading refuses")
