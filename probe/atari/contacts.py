"""What touching each kind of object does, from the recording rollout.

Every labelled frame where an instance of an object type comes within reach of the player's
box (one player size: the labeller drops blobs overlapping the player, so a touch shows as
an instance right beside it) is a contact. What follows it within a short horizon (points scored, a life or points lost) is
compared with what follows any labelled frame of the player (the base rate): a type whose
touches are followed by points far more often than chance is a "reward" (a thing to
collect), one whose touches are followed by a loss is "harm" (a thing to avoid), and one
touched often with neither is "nothing". Too few touches: "unknown". Random play touches
what comes at it, so the frequent movers get typed first.

No env steps are taken here: the recording already paid for the frames it labelled.
"""

from __future__ import annotations

import numpy as np

TOUCH_PX = 2.0  # beyond one player size (pixels): sprites flicker and blobs lose an edge
HORIZON_FRAMES = 120  # what happens within two seconds of a touch is its effect (a death animation plays first)
MIN_CONTACTS = 3  # fewer touches say nothing
LIFT = 2.0  # an effect must follow touches this many times more often than it follows any frame
MIN_RATE = 0.25  # ... and follow at least this share of touches
MIN_EFFECTS = 3  # ... and at least this many of them: two coincidences are not a type


def _effects(rewards: np.ndarray, lives: np.ndarray, fresh: np.ndarray, env: int, step: int, horizon: int) -> tuple[bool, bool]:
    """(points scored, a life or points lost) in the `horizon` steps from `step`, not past an
    episode restart."""
    end = min(rewards.shape[1], step + horizon)
    restart = np.nonzero(fresh[env, step + 1 : end])[0]
    if restart.size:
        end = step + 1 + int(restart[0])
    window = rewards[env, step:end]
    lost_life = end > step and int(lives[env, step:end].min()) < int(lives[env, max(0, step - 1)])
    return bool((window > 0).any()), bool(lost_life or (window < 0).any())


def type_contacts(objects: list, types: list, player_boxes: list, recording, frame_skip: int) -> None:
    """Set `contact` and `contacts` on each ObjectInfo in `objects` (the report's, in the
    order of the labeller's `types`) from the player's boxes and the recording's rewards
    and lives."""
    if recording is None or not player_boxes or getattr(recording, "rewards", None) is None:
        return
    horizon = max(4, HORIZON_FRAMES // max(1, frame_skip))
    boxes = {(e, t): (x0, y0, x1, y1) for e, t, x0, y0, x1, y1 in player_boxes}
    rewards, lives, fresh = recording.rewards, recording.lives, recording.fresh
    base = np.array([_effects(rewards, lives, fresh, e, t, horizon) for e, t in boxes], dtype=float).mean(axis=0)
    for info, kind in zip(objects, types):
        touches = []
        for env, step, xs, ys in kind.records:
            box = boxes.get((env, step))
            if box is None:
                continue
            x0, y0, x1, y1 = box
            reach = max(x1 - x0, y1 - y0) + TOUCH_PX
            gap_x = np.abs(np.asarray(xs) - (x0 + x1) / 2) - ((x1 - x0) + kind.width) / 2
            gap_y = np.abs(np.asarray(ys) - (y0 + y1) / 2) - ((y1 - y0) + kind.height) / 2
            if (np.maximum(gap_x, gap_y) <= reach).any():
                touches.append(_effects(rewards, lives, fresh, env, step, horizon))
        info.contacts = len(touches)
        if len(touches) < MIN_CONTACTS:
            info.contact = "unknown"
            continue
        counts = np.asarray(touches, dtype=float).sum(axis=0)
        scored, lost = counts / len(touches)
        if lost >= MIN_RATE and lost >= LIFT * base[1] and counts[1] >= MIN_EFFECTS:
            info.contact = "harm"
        elif scored >= MIN_RATE and scored >= LIFT * base[0] and counts[0] >= MIN_EFFECTS:
            info.contact = "reward"
        else:
            info.contact = "nothing"
