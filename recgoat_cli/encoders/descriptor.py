"""The colour-histogram+HOG descriptor: a classical, training-free image representation.

Used for the image modality when no CLIP weights are available, so that the modality still carries real
information (colour and shape) instead of noise. It is not a learned embedding and is named for what it is.

For an image decoded to RGB and resized to ``SIZE x SIZE`` (bilinear):

* colour part, 128 values: a joint HSV histogram with 8 hue x 4 saturation x 4 value bins, L1-normalised to a
  distribution ``p``, then ``sqrt(p)`` (the Hellinger map: the Euclidean distance between two such vectors is
  the Hellinger distance between the histograms, and ``||sqrt(p)||_2 = 1``);
* shape part, 144 values: a HOG-like histogram of unsigned gradient orientations. Gradients are central
  differences of the grey image; each pixel votes its gradient magnitude into one of 9 orientation bins over
  [0, pi) in its cell of a 4 x 4 grid; the 144 values are L2-normalised (all zero for a flat image).

The descriptor is ``[colour, shape] / sqrt(2)`` (unit norm unless the image is flat), 272 values, float32.
Every step is deterministic integer or float arithmetic on the decoded pixels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from recgoat_cli.encoders.image import read_rgb_image

logger = logging.getLogger(__name__)

DESCRIPTOR_NAME = "colour-histogram+HOG descriptor"
SIZE = 64
HUE_BINS, SATURATION_BINS, VALUE_BINS = 8, 4, 4
GRID = 4
ORIENTATION_BINS = 9
COLOUR_DIM = HUE_BINS * SATURATION_BINS * VALUE_BINS
SHAPE_DIM = GRID * GRID * ORIENTATION_BINS
DESCRIPTOR_DIM = COLOUR_DIM + SHAPE_DIM


def colour_histogram(image: Image.Image) -> np.ndarray:
    """Hellinger-mapped 8x4x4 HSV histogram of a ``SIZE x SIZE`` RGB image, float64 ``[128]``, unit L2 norm."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.int64)  # Pillow's HSV: every channel in 0..255
    hue = hsv[..., 0] * HUE_BINS // 256
    saturation = hsv[..., 1] * SATURATION_BINS // 256
    value = hsv[..., 2] * VALUE_BINS // 256
    joint = (hue * SATURATION_BINS + saturation) * VALUE_BINS + value
    counts = np.bincount(joint.ravel(), minlength=COLOUR_DIM).astype(np.float64)
    return np.sqrt(counts / counts.sum())


def orientation_histogram(image: Image.Image) -> np.ndarray:
    """HOG-like 4x4-cell, 9-bin unsigned gradient-orientation histogram, float64 ``[144]``, unit L2 norm or zero."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    gy[1:-1, :] = grey[2:, :] - grey[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned: a dark-to-light edge and its reverse vote alike
    orientation = np.minimum((angle * ORIENTATION_BINS / np.pi).astype(np.int64), ORIENTATION_BINS - 1)
    cell = SIZE // GRID
    rows, cols = np.indices(grey.shape)
    cell_index = (rows // cell) * GRID + (cols // cell)
    histogram = np.bincount(
        (cell_index * ORIENTATION_BINS + orientation).ravel(), weights=magnitude.ravel(), minlength=SHAPE_DIM
    )
    norm = np.linalg.norm(histogram)
    return histogram / norm if norm > 0 else histogram


def describe_image(image: Image.Image) -> np.ndarray:
    """The colour-histogram+HOG descriptor of one RGB image, float32 ``[272]``."""
    resized = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    parts = np.concatenate([colour_histogram(resized), orientation_histogram(resized)])
    return (parts / np.sqrt(2.0)).astype(np.float32)


def describe_images(
    paths: Sequence[str | os.PathLike[str] | None],
) -> tuple[np.ndarray, list[int], list[str]]:
    """Descriptors of the images at ``paths``, float32 ``[n, 272]``, row ``i`` for ``paths[i]``.

    Returns:
        ``(descriptors, bad, reasons)``: unreadable images (``None``, missing, empty, truncated, not an image)
        keep a zero row; ``bad`` lists their indices ascending and ``reasons[k]`` says why ``bad[k]`` failed.
    """
    descriptors = np.zeros((len(paths), DESCRIPTOR_DIM), dtype=np.float32)
    bad: list[int] = []
    reasons: list[str] = []
    for index, path in enumerate(paths):
        image, reason = read_rgb_image(path)
        if image is None:
            bad.append(index)
            reasons.append(reason)
            logger.warning("skipping image %d: %s", index, reason)
            continue
        descriptors[index] = describe_image(image)
    return descriptors, bad, reasons
