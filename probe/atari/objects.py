"""Phase 2, object typing: group foreground blobs into the kinds of things that move."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from probe.atari.segmentation import Blobs


@dataclass
class ObjectType:
    """A kind of moving blob: colour plus a size window."""

    colour: int
    width: float
    height: float
    area: float
    single: bool = True  # usually one instance per frame (label its position) vs a group
    records: list = field(default_factory=list)  # (env, step, xs, ys) sightings
    speeds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # px/step seen in discovery

    def matches(self, blobs: Blobs) -> np.ndarray:
        tol_w, tol_h = max(2.0, 0.34 * self.width), max(2.0, 0.34 * self.height)
        return (
            (blobs.colour == self.colour)
            & (np.abs(blobs.width - self.width) <= tol_w)
            & (np.abs(blobs.height - self.height) <= tol_h)
        )


def group_object_types(blobs_per_frame: list[tuple[int, int, Blobs]], min_presence: float, max_types: int = 6) -> list[ObjectType]:
    """Group foreground blobs by colour and size; keep the types that move.

    blobs_per_frame holds (env, step, blobs) in time order per env. A type is kept when it
    is seen in at least `min_presence` of the frames and its blobs move between frames.
    """
    if not blobs_per_frame:
        return []
    counts: Counter = Counter()
    for _, _, b in blobs_per_frame:
        for c, w, h in zip(b.colour.tolist(), b.width.tolist(), b.height.tolist()):
            counts[(c, w, h)] += 1
    types: list[ObjectType] = []
    claimed: set = set()
    for (c, w, h), _ in counts.most_common():
        if (c, w, h) in claimed:
            continue
        t = ObjectType(colour=c, width=w, height=h, area=0.0)
        for key in counts:
            if key[0] == c and key not in claimed and abs(key[1] - w) <= max(2.0, 0.34 * w) and abs(key[2] - h) <= max(2.0, 0.34 * h):
                claimed.add(key)
        types.append(t)

    n_frames = len(blobs_per_frame)
    kept = []
    for t in types:
        areas, n_present = [], 0
        for env, step, b in blobs_per_frame:
            m = t.matches(b)
            if m.any():
                n_present += 1
                idx = np.nonzero(m)[0]
                areas.extend(b.area[idx].tolist())
                t.records.append((env, step, b.cx[idx], b.cy[idx]))
        if n_present < max(3, min_presence * n_frames):
            continue
        speeds = sighting_speeds(t.records)
        # Slow movers (an invader formation) creep a pixel every dozen steps; digits and
        # animations that change in place do not go anywhere: compare sightings 32-64 apart.
        drift = sighting_speeds(t.records, min_gap=32, max_gap=64)
        if not drift.size or np.median(drift) * 48 < 1.0:
            continue  # usually moves less than a pixel in 48 steps: scenery that changes in place
        t.area = float(np.median(areas))
        t.speeds = speeds
        t.single = float(np.median([len(r[2]) for r in t.records])) <= 1
        kept.append(t)
    kept.sort(key=lambda t: -len(t.records))
    return kept[:max_types]


def sighting_speeds(records: list, min_gap: int = 1, max_gap: int = 8) -> np.ndarray:
    """Pixels per step between sightings of the same env `min_gap`..`max_gap` steps apart,
    each blob matched to the nearest blob of the earlier sighting. Records are
    (env, step, xs, ys); envs may be interleaved."""
    out = []
    by_env: dict = {}
    for r in records:
        by_env.setdefault(r[0], []).append(r)
    for rs in by_env.values():
        rs.sort(key=lambda r: r[1])
        steps = np.array([r[1] for r in rs])
        for i, (_, s1, x1, y1) in enumerate(rs):
            j = np.searchsorted(steps, s1 - min_gap, side="right") - 1  # latest sighting >= min_gap earlier
            if j < 0 or j >= i or s1 - steps[j] > max_gap:
                continue
            _, s0, x0, y0 = rs[j]
            d = np.hypot(x1[:, None] - x0[None, :], y1[:, None] - y0[None, :]).min(axis=1)
            out.extend((d / (s1 - s0)).tolist())
    return np.asarray(out)
