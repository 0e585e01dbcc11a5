"""Which torch device a model runs on: one reading of the `image.device` setting for every model."""

from __future__ import annotations

import torch

from engage.errors import EmbedderError


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; an explicit 'cuda' without a GPU is an `EmbedderError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EmbedderError(f"image.device={device!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return resolved
