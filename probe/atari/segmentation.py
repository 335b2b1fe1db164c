"""Blobs: one-colour connected components, vectorised over horizontal runs; colour keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def pack_rgb(frames: np.ndarray, channels_first: bool = True) -> np.ndarray:
    """RGB uint8 frames -> int32 colour keys 0xRRGGBB (drops the channel axis)."""
    f = frames.astype(np.int32, copy=False)
    if channels_first:
        return (f[..., 0, :, :] << 16) | (f[..., 1, :, :] << 8) | f[..., 2, :, :]
    return (f[..., 0] << 16) | (f[..., 1] << 8) | f[..., 2]


def unpack_rgb(key: int) -> list[int]:
    """0xRRGGBB -> [r, g, b]."""
    key = int(key)
    return [(key >> 16) & 255, (key >> 8) & 255, key & 255]


def unpack_keys(keys: np.ndarray) -> np.ndarray:
    """(H, W) colour keys -> (H, W, 3) uint8 RGB."""
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.uint8)


def hex_colour(key: int) -> str:
    return f"#{int(key):06x}"


@dataclass
class Blobs:
    """Connected components of equal colour (8-connected): one entry per blob.

    Coordinates are pixels, x right and y down; boxes are inclusive [x0, x1] x [y0, y1].
    """

    colour: np.ndarray
    area: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    fresh: np.ndarray | None = None  # optional: changed since the previous sample (foreground blobs)

    def __len__(self) -> int:
        return len(self.area)

    @property
    def width(self) -> np.ndarray:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> np.ndarray:
        return self.y1 - self.y0 + 1

    def take(self, index) -> "Blobs":
        fields = [getattr(self, f)[index] for f in ("colour", "area", "cx", "cy", "x0", "x1", "y0", "y1")]
        return Blobs(*fields, fresh=None if self.fresh is None else self.fresh[index])

    @staticmethod
    def empty() -> "Blobs":
        z = np.zeros(0)
        return Blobs(z.astype(np.int64), z, z, z, z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z.astype(np.int64))


def find_blobs(keys: np.ndarray, ignore: np.ndarray | None = None, label_map: bool = False) -> Blobs | tuple[Blobs, np.ndarray]:
    """Segment an (H, W) array of colour keys into one-colour, 8-connected blobs.

    Pixels where `ignore` is True belong to no blob (pass the background, or scenery).
    With label_map=True also returns an (H, W) int array: each pixel's blob index, -1 if none.
    Works on horizontal runs rather than pixels, so a 210x160 frame takes about a millisecond:
    runs are linked to same-colour runs touching them in the next row, and linked runs are
    merged by vectorised min-label propagation with pointer jumping (no scipy needed).
    """
    k = np.where(ignore, -1, keys) if ignore is not None else keys
    valid = k >= 0
    # Work on the smallest window holding every valid pixel (a sprite's mask is tiny).
    rows, cols = np.nonzero(valid.any(axis=1))[0], np.nonzero(valid.any(axis=0))[0]
    if rows.size == 0:
        return (Blobs.empty(), np.full(keys.shape, -1)) if label_map else Blobs.empty()
    r0, c0 = int(rows[0]), int(cols[0])
    window = np.s_[r0 : int(rows[-1]) + 1, c0 : int(cols[-1]) + 1]
    blobs, labels = _label_runs(k[window], valid[window])
    blobs.cx += c0
    blobs.x0 += c0
    blobs.x1 += c0
    blobs.cy += r0
    blobs.y0 += r0
    blobs.y1 += r0
    if not label_map:
        return blobs
    full = np.full(keys.shape, -1)
    full[window] = labels
    return blobs, full


def _label_runs(k: np.ndarray, valid: np.ndarray) -> tuple[Blobs, np.ndarray]:
    """find_blobs on a window: k holds colour keys, -1 where ignored."""
    H, W = k.shape
    start = valid.copy()
    start[:, 1:] &= k[:, 1:] != k[:, :-1]
    n = int(start.sum())
    run_id = np.cumsum(start.ravel()).reshape(H, W) - 1
    ys, xs = np.nonzero(start)
    length = np.bincount(run_id[valid], minlength=n)

    # Links between runs of the same colour in consecutive rows: straight down and diagonal.
    up, down = k[:-1], k[1:]
    rid_up, rid_down = run_id[:-1], run_id[1:]
    src, dst = [], []
    for a_cols, b_cols in ((np.s_[:], np.s_[:]), (np.s_[1:], np.s_[:-1]), (np.s_[:-1], np.s_[1:])):
        linked = (up[:, a_cols] == down[:, b_cols]) & (up[:, a_cols] >= 0)
        src.append(rid_up[:, a_cols][linked])
        dst.append(rid_down[:, b_cols][linked])
    a, b = np.concatenate(src), np.concatenate(dst)  # duplicates are harmless below

    parent = np.arange(n)
    while a.size:
        pa, pb = parent[a], parent[b]
        if np.array_equal(pa, pb):
            break
        low = np.minimum(pa, pb)
        np.minimum.at(parent, pa, low)
        np.minimum.at(parent, pb, low)
        while True:  # pointer jumping: every run points straight at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand

    is_root = parent == np.arange(n)
    roots = np.nonzero(is_root)[0]
    comp = (np.cumsum(is_root) - 1)[parent]  # run -> blob index, blobs ordered by first run
    m = roots.size
    area = np.bincount(comp, weights=length, minlength=m)
    sum_x = np.bincount(comp, weights=length * (xs + (length - 1) / 2), minlength=m)
    sum_y = np.bincount(comp, weights=length * ys, minlength=m)
    x0 = np.full(m, W, dtype=np.int64)
    np.minimum.at(x0, comp, xs)
    x1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(x1, comp, xs + length - 1)
    y0 = np.full(m, H, dtype=np.int64)
    np.minimum.at(y0, comp, ys)
    y1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(y1, comp, ys)
    colour = k[ys[roots], xs[roots]].astype(np.int64)
    blobs = Blobs(colour, area, sum_x / area, sum_y / area, x0, x1, y0, y1)
    return blobs, np.where(valid, comp[run_id], -1)


def find_groups(mask: np.ndarray, colour: int, reach_y: int = 2, reach_x: int = 1) -> Blobs:
    """Blobs of one colour, counting pixels up to `reach_y` rows / `reach_x` columns apart
    as connected. A multicoloured sprite (a character whose red body is cut into bands by a
    yellow belt and face) stays one blob; stats are computed on the real pixels only."""
    grown = mask.copy()
    for d in range(1, reach_y + 1):
        grown[d:] |= mask[:-d]
        grown[:-d] |= mask[d:]
    wide = grown.copy()
    for d in range(1, reach_x + 1):
        wide[:, d:] |= grown[:, :-d]
        wide[:, :-d] |= grown[:, d:]
    groups, labels = find_blobs(wide.astype(np.int32), ignore=~wide, label_map=True)
    if len(groups) == 0:
        return groups
    ys, xs = np.nonzero(mask)
    lab = labels[ys, xs]
    m = len(groups)
    area = np.bincount(lab, minlength=m).astype(np.float64)
    x0 = np.full(m, mask.shape[1], dtype=np.int64)
    np.minimum.at(x0, lab, xs)
    x1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(x1, lab, xs)
    y0 = np.full(m, mask.shape[0], dtype=np.int64)
    np.minimum.at(y0, lab, ys)
    y1 = np.zeros(m, dtype=np.int64)
    np.maximum.at(y1, lab, ys)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(lab, weights=xs, minlength=m) / area
        cy = np.bincount(lab, weights=ys, minlength=m) / area
    keep = area > 0
    return Blobs(np.full(m, colour, dtype=np.int64), area, cx, cy, x0, x1, y0, y1).take(keep)


def mode_colour(keys: np.ndarray) -> int:
    """The most common colour key (the background, for almost every Atari game)."""
    values, counts = np.unique(keys, return_counts=True)
    return int(values[counts.argmax()])
