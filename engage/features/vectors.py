"""Per-post vectors (`PostVectors`: image embedding, caption embedding, photo quality) and the one-row view a
table without photos carries. NumPy only: the Ray feature tasks import it without the pipeline's torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PostVectors:
    """Per-post vectors aligned with a posts table; NaN rows where a post has no usable image."""

    image: np.ndarray  # (n, image dim) float32, L2-normalised
    caption: np.ndarray  # (n, text dim) float32, L2-normalised
    quality: np.ndarray  # (n, len(QUALITY_COLUMNS)) float32

    def __len__(self) -> int:
        return len(self.image)

    def take(self, positions: np.ndarray | list[int]) -> PostVectors:
        positions = np.asarray(positions, dtype=int)
        return PostVectors(_rows(self.image, positions), self.caption[positions], self.quality[positions])

    @staticmethod
    def concat(parts: list[PostVectors]) -> PostVectors:
        images = [p.image for p in parts]
        if images and all(repeats_one_row(m) for m in images):  # photo-less parts stay one row seen n times
            image = np.broadcast_to(images[0][:1], (sum(len(m) for m in images), images[0].shape[1]))
        else:
            image = np.concatenate(images)
        return PostVectors(image, np.concatenate([p.caption for p in parts]),
                           np.concatenate([p.quality for p in parts]))


def repeats_one_row(matrix: np.ndarray) -> bool:
    """Whether `matrix` is one row seen n times (the NaN view `embed` gives a table without photos)."""
    return matrix.ndim == 2 and len(matrix) > 0 and matrix.strides[0] == 0


def _rows(matrix: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`matrix[positions]`, still a view of one row when `matrix` is one (never n copies of it)."""
    if repeats_one_row(matrix):
        return np.broadcast_to(matrix[:1], (len(positions), matrix.shape[1]))
    return matrix[positions]
