"""Phase 1, actions: what holding each action does, from identical copies of the game."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from probe.atari.metered_env import BudgetCut, MeteredEnv
from probe.atari.report import ActionEffect, MovementLabels, ProbeConfig, ProbeReport
from probe.atari.segmentation import find_groups, mode_colour, pack_rgb, unpack_rgb
from probe.atari.tracking import PlayerModel, PlayerTracker, Scenery

MOVE_THRESHOLD = 2.0  # pixels of displacement (relative to NOOP) that count as movement
FIRST_MOVE = 3.0  # the offset at which an action's direction is read


@dataclass
class ActionExperiment:
    """Frames and RAM of every action's copy during the hold (index 0 of time = hold start)."""

    prefix: list[int]  # actions played in every copy before the hold
    frames: np.ndarray  # (A, hold+1, 3, 210, 160) uint8
    rams: np.ndarray  # (A, hold+1, 128) uint8
    lives: np.ndarray  # (A, hold+1) info["lives"]


def find_warmup(env: MeteredEnv, max_steps: int) -> int | None:
    """Steps the game ignores input: hold action i in env i from reset until the frames of
    some env differ from env 0's (NOOP). Returns that step count, or None if they never do."""
    env.reset()
    actions = np.arange(env.n)
    for t in range(max_steps):
        frames, _, _, _ = env.step(actions)
        if (frames != frames[:1]).any():
            return t
    return None


def hold_actions(env: MeteredEnv, prefix: list[int], hold: int) -> ActionExperiment:
    """Play the same `prefix` of actions in every copy, then hold action i in copy i for
    `hold` steps. Frames and RAM are kept for the hold (time 0 = end of the prefix)."""
    frames, rams, lives = env.reset()
    for action in prefix:
        frames, rams, lives, _ = env.step(np.full(env.n, action, dtype=np.int32))
    out_frames = np.empty((env.n, hold + 1) + frames.shape[1:], dtype=np.uint8)
    out_rams = np.empty((env.n, hold + 1, rams.shape[1]), dtype=np.uint8)
    out_lives = np.empty((env.n, hold + 1), dtype=np.int32)
    out_frames[:, 0], out_rams[:, 0], out_lives[:, 0] = frames, rams, lives
    actions = np.arange(env.n)
    for t in range(1, hold + 1):
        frames, rams, lives, _ = env.step(actions)
        out_frames[:, t], out_rams[:, t], out_lives[:, t] = frames, rams, lives
    return ActionExperiment(list(prefix), out_frames, out_rams, out_lives)


def vote_player_colour(exps: list[ActionExperiment], background: int) -> int | None:
    """The colour that the actions move most consistently.

    A moved blob leaves pixels of its colour in the NOOP copy that are gone in the action's
    copy, and puts that colour where it was not: so a colour scores min(appeared, vanished)
    pixels per step. A shot that appears (or a blob destroyed) scores nothing. Each action
    votes with the shares of its scores, so one loud effect cannot outvote several actions
    that move the player. Falls back to all changed colours if nothing moved.
    """
    moved: Counter = Counter()
    changed_any: Counter = Counter()
    for exp in exps:
        noop_keys = pack_rgb(exp.frames[0])
        for a in range(1, exp.frames.shape[0]):
            keys = pack_rgb(exp.frames[a])
            changed = keys != noop_keys
            if not changed.any():
                continue
            appeared = Counter(dict(zip(*np.unique(keys[changed], return_counts=True))))
            vanished = Counter(dict(zip(*np.unique(noop_keys[changed], return_counts=True))))
            for votes, scores in (
                (moved, {c: min(appeared[c], vanished[c]) for c in appeared if c != background}),
                (changed_any, {c: appeared[c] + vanished[c] for c in appeared | vanished if c != background}),
            ):
                total = sum(scores.values())
                for c, n in scores.items():
                    if n and total:
                        votes[int(c)] += n / total
    votes = moved if moved else changed_any
    return votes.most_common(1)[0][0] if votes else None


def action_scenery(exp: ActionExperiment) -> Scenery:
    """Pixels that never changed in any copy during the hold."""
    first = pack_rgb(exp.frames[0, 0])
    constant = np.ones(first.shape, dtype=bool)
    for a in range(exp.frames.shape[0]):
        constant &= (pack_rgb(exp.frames[a]) == first).all(axis=0)
    return Scenery(first, constant)


def seed_player(exp: ActionExperiment, colour: int, scenery: Scenery) -> PlayerModel | None:
    """Size and home of the player.

    Candidates are blobs of the player's colour touching pixels that differ from the NOOP
    copy; each is paired with the nearest similar blob of the NOOP copy, and only the ones
    that moved (a score digit redrawn in place does not) are kept. Size is their median;
    home is the NOOP-copy partner of the earliest mover, found again at the hold start."""
    noop_keys = pack_rgb(exp.frames[0])
    moved, touched = [], []  # (t, area, width, height, partner cx, partner cy)
    for a in range(1, exp.frames.shape[0]):
        keys = pack_rgb(exp.frames[a])
        for t in range(1, keys.shape[0]):
            changed = (keys[t] != noop_keys[t]) & (keys[t] == colour)
            if not changed.any():
                continue
            blobs = find_groups(keys[t] == colour, colour)
            partners = find_groups(noop_keys[t] == colour, colour)
            for i in range(len(blobs)):
                if not changed[blobs.y0[i] : blobs.y1[i] + 1, blobs.x0[i] : blobs.x1[i] + 1].any():
                    continue
                row = [t, blobs.area[i], blobs.width[i], blobs.height[i], blobs.cx[i], blobs.cy[i]]
                similar = (partners.area >= 0.5 * blobs.area[i]) & (partners.area <= 2 * blobs.area[i])
                if similar.any():
                    p = partners.take(similar)
                    dist = np.hypot(p.cx - blobs.cx[i], p.cy - blobs.cy[i])
                    j = int(dist.argmin())
                    row[4:] = [p.cx[j], p.cy[j]]
                    if dist[j] >= 1.0:
                        moved.append(row)
                touched.append(row)
    seen = np.asarray(moved or touched, dtype=np.float64)
    if seen.size == 0:
        return None
    area, width, height = (float(np.median(seen[:, k])) for k in (1, 2, 3))
    first = seen[seen[:, 0].argmin()]
    model = PlayerModel(colour=colour, area=area, width=width, height=height, home=(float(first[4]), float(first[5])))
    # The player may not be drawn yet at the hold start: then keep the partner's position.
    tracker = PlayerTracker(model, constrain_axes=False, max_jump=max(width, height), scenery=scenery)
    blob = tracker.locate(noop_keys[0])
    if blob is not None:
        model.home = (float(blob.cx[0]), float(blob.cy[0]))
    return model


def _direction(dx: float, dy: float, threshold: float = MOVE_THRESHOLD) -> str:
    """'up-left' etc. A component counts if it is >= threshold and not tiny next to the other."""
    big = max(abs(dx), abs(dy))
    parts = []
    if abs(dy) >= threshold and abs(dy) >= 0.25 * big:
        parts.append("up" if dy < 0 else "down")
    if abs(dx) >= threshold and abs(dx) >= 0.25 * big:
        parts.append("left" if dx < 0 else "right")
    return "-".join(parts) or "none"


def _name_matches(name: str, direction: str, returns: bool = False) -> bool | None:
    """Does an ALE action name ('UPRIGHTFIRE') describe the measured direction? None when
    there is nothing to compare (no direction either way, or an undirected jump)."""
    named = {d for d in ("up", "down", "left", "right") if d.upper() in name}
    measured = set(direction.split("-")) - {"none"}
    if not named and (not measured or returns):
        return None
    return named == measured


def track_player(exp: ActionExperiment, model: PlayerModel, scenery: Scenery) -> np.ndarray:
    """Player centre (x, y) in every copy at every hold step: (A, T, 2), NaN when not seen."""
    A, T = exp.frames.shape[:2]
    tracks = np.full((A, T, 2), np.nan)
    for a in range(A):
        keys = pack_rgb(exp.frames[a])
        tracker = PlayerTracker(model, constrain_axes=False, max_jump=3 * max(model.width, model.height) + 8, scenery=scenery)
        for t in range(T):
            blob = tracker.locate(keys[t])
            if blob is not None:
                tracks[a, t] = blob.cx[0], blob.cy[0]
    return tracks


def analyse_actions(
    exp: ActionExperiment, names: list[str], model: PlayerModel | None, tracks: np.ndarray | None, use_ram: bool
) -> tuple[list[ActionEffect], np.ndarray]:
    """Per-action effects of one hold experiment, and the (A, A) matrix of copies whose
    frames (and RAM, in ram mode) were identical throughout."""
    A = exp.frames.shape[0]
    same_frames = np.array([[np.array_equal(exp.frames[i], exp.frames[j]) for j in range(A)] for i in range(A)])
    same = same_frames.copy()
    if use_ram:
        same &= np.array([[np.array_equal(exp.rams[i], exp.rams[j]) for j in range(A)] for i in range(A)])
    noop_keys = pack_rgb(exp.frames[0])
    background = mode_colour(noop_keys[0])
    effects = []
    for a in range(A):
        eff = ActionEffect(index=a, name=names[a] if a < len(names) else str(a))
        eff.is_noop = bool(same_frames[a, 0])
        if use_ram:
            differs = (exp.rams[a] != exp.rams[0]).any(axis=0)
            eff.ram_bytes_changed = [int(i) for i in np.nonzero(differs)[0]]
            eff.ram_only_effect = bool(eff.is_noop and differs.any())
        if a == 0:
            eff.dx = eff.dy = eff.max_abs_dx = eff.max_abs_dy = 0.0
        elif tracks is not None:
            rel = tracks[a] - tracks[0]  # relative to the NOOP copy: autonomous motion cancels
            ok = ~np.isnan(rel).any(axis=1)
            if ok.any():
                last = np.nonzero(ok)[0][-1]
                eff.dx, eff.dy = round(float(rel[last, 0]), 2), round(float(rel[last, 1]), 2)
                eff.max_abs_dx = round(float(np.abs(rel[ok, 0]).max()), 2)
                eff.max_abs_dy = round(float(np.abs(rel[ok, 1]).max()), 2)
                # Direction from the first clear move: walking right off a ledge ends
                # "down-right", but the action is RIGHT.
                moved = np.nonzero(ok & (np.abs(np.nan_to_num(rel)).max(axis=1) >= FIRST_MOVE))[0]
                if moved.size:
                    t = moved[0]
                    eff.first_move = [int(t), round(float(rel[t, 0]), 2), round(float(rel[t, 1]), 2)]
                    eff.direction = _direction(rel[t, 0], rel[t, 1], threshold=min(MOVE_THRESHOLD, FIRST_MOVE))
                    eff.returns = bool(np.hypot(eff.dx, eff.dy) < MOVE_THRESHOLD)
        if a > 0 and not eff.is_noop:
            eff.spawns_object = _spawns(
                pack_rgb(exp.frames[a]), noop_keys, None if tracks is None else tracks[a], None if tracks is None else tracks[0], model, background
            )
        effects.append(eff)
    return effects, same


def _spawns(keys: np.ndarray, noop_keys: np.ndarray, track, noop_track, model: PlayerModel | None, background: int) -> bool:
    """Does a new blob appear away from the player early in the hold?

    Away from the player, look for a colour that appears in the action's copy but vanished
    nowhere in the NOOP copy: a launched shot or ball. A ball merely deflected by a moved
    paddle both appears and vanishes, so it does not count; neither does anything after the
    first half of the hold."""
    pad_x = model.width if model else 0.0
    pad_y = model.height if model else 0.0
    for t in range(1, max(2, keys.shape[0] // 2)):
        changed = keys[t] != noop_keys[t]
        if not changed.any():
            continue
        ys, xs = np.nonzero(changed)
        far = np.ones(xs.size, dtype=bool)
        if track is not None:
            for pos in (track[t], noop_track[t], track[t - 1]):
                if not np.isnan(pos).any():
                    far &= (np.abs(xs - pos[0]) > pad_x) | (np.abs(ys - pos[1]) > pad_y)
        appeared = set(keys[t][ys[far], xs[far]].tolist()) - {background}
        vanished = set(noop_keys[t][ys[far], xs[far]].tolist())
        if appeared - vanished:
            return True
    return False


def merge_effects(states: list[tuple[list[ActionEffect], np.ndarray]]) -> list[ActionEffect]:
    """Combine the action experiments from several start states.

    An action's movement is taken from the state where it moved the player most (from the
    first state the player may be against a wall); it is a no-op only if it was one in every
    state, and equivalent to another action only if they matched in every state."""
    same = np.logical_and.reduce([s for _, s in states])
    merged = []
    for a in range(same.shape[0]):
        versions = [effects[a] for effects, _ in states]
        best = max(versions, key=lambda e: (e.max_abs_dx or 0.0) + (e.max_abs_dy or 0.0)).model_copy()
        best.is_noop = all(e.is_noop for e in versions)
        best.spawns_object = any(e.spawns_object for e in versions)
        best.ram_bytes_changed = sorted({b for e in versions for b in e.ram_bytes_changed})
        best.ram_only_effect = best.is_noop and bool(best.ram_bytes_changed)
        others = [j for j in range(same.shape[0]) if j != a and same[a, j]]
        best.equivalent_to = min(others) if others else None
        best.name_matches_direction = _name_matches(best.name, best.direction, best.returns)
        merged.append(best)
    return merged


def rank_movers(tracks: np.ndarray | None, steps: int, per_axis: int = 2) -> list[list[int]]:
    """For each axis, the actions that moved the player furthest along it in `steps` steps,
    best first, one per distinct outcome (RIGHT and UPRIGHT often do the same thing).
    Holding one that long gives another start state: off the wall the player started
    against, halfway down the ladder it stood above."""
    if tracks is None:
        return []
    t = min(steps, tracks.shape[1] - 1)
    rel = tracks[:, t] - tracks[0, t]  # (A, 2) offsets from the NOOP copy
    ranked = []
    for axis in (0, 1):
        size = np.nan_to_num(np.abs(rel[:, axis]), nan=-1.0)
        picks, outcomes = [], []
        for a in np.argsort(-size, kind="stable"):
            if size[a] < MOVE_THRESHOLD or len(picks) == per_axis:
                break
            if any(np.allclose(rel[a], o, atol=0.5) for o in outcomes):
                continue
            picks.append(int(a))
            outcomes.append(rel[a])
        if picks:
            ranked.append(picks)
    return ranked


def action_phase(
    env: MeteredEnv, names: list[str], config: ProbeConfig, use_ram: bool, report: ProbeReport, notes: list[str]
) -> tuple[list[ActionExperiment], PlayerModel | None, list[ActionEffect]]:
    """Find the warm-up, hold every action from a first state, identify the player, then
    hold every action again from up to two more states (after the strongest mover along
    each axis was held for half a hold, so a player that started against a wall can move
    both ways, and one that started above a ladder is now on it).

    Fills report.warmup_steps, lives_start, background_colour, player_moves_x/y."""
    hold = config.hold_steps
    diverge = find_warmup(env, config.max_warmup_steps)
    if diverge is None:
        notes.append(f"no action changed the screen within {config.max_warmup_steps} steps")
    report.warmup_steps = max(0, (diverge or 0) - 1)
    warmup = [0] * report.warmup_steps
    exps = [hold_actions(env, warmup, hold)]
    report.lives_start = int(exps[0].lives[0, 0])
    background = mode_colour(pack_rgb(exps[0].frames[0, 0]))
    report.background_colour = unpack_rgb(background)

    colour = vote_player_colour(exps, background)
    scenery = action_scenery(exps[0])
    model = seed_player(exps[0], colour, scenery) if colour is not None else None
    tracks = [track_player(exps[0], model, scenery) if model else None]
    states = [analyse_actions(exps[0], names, model, tracks[0], use_ram)]
    tried: set[int] = set()
    try:
        # Some actions are enabled later than others (a jump only after the intro): if any
        # action did nothing, also try every action after waiting one more hold.
        if any(e.is_noop for e in states[0][0][1:]):
            exp = hold_actions(env, warmup + [0] * hold, hold)
            exps.append(exp)
            tracks.append(track_player(exp, model, scenery) if model else None)
            states.append(analyse_actions(exp, names, model, tracks[-1], use_ram))
        for candidates in rank_movers(tracks[0], hold // 2):
            for mover in candidates:
                if mover in tried:
                    break  # this state was already explored for the other axis
                tried.add(mover)
                exp = hold_actions(env, warmup + [mover] * (hold // 2), hold)
                if exp.lives[0, -1] < exps[0].lives[0, 0]:
                    notes.append(f"holding action {mover} for {hold // 2} steps costs a life; that start state was not used")
                    continue  # a dying player responds to nothing: try the next mover
                exps.append(exp)
                tracks.append(track_player(exp, model, scenery))
                states.append(analyse_actions(exp, names, model, tracks[-1], use_ram))
                break
    except BudgetCut as cut:  # keep what the earlier states showed
        report.partial = True
        notes.append(f"budget ran out during the extra action states ({cut})")
    if model is None:
        notes.append("no player found: no action moved a blob")
    else:
        moved = np.concatenate([(t - t[:1]).reshape(-1, 2) for t in tracks if t is not None])
        model.moves_x = bool(np.nanmax(np.abs(moved[:, 0]), initial=0) >= MOVE_THRESHOLD)
        model.moves_y = bool(np.nanmax(np.abs(moved[:, 1]), initial=0) >= MOVE_THRESHOLD)
        report.player_moves_x, report.player_moves_y = model.moves_x, model.moves_y
    return exps, model, merge_effects(states)


def movement_labels(effects: list[ActionEffect]) -> MovementLabels:
    """For each direction, the lowest action moving purely that way and staying moved (else
    the strongest such mover); the lowest launcher; the lowest up-and-back mover (jump)."""
    labels = MovementLabels()
    for d, axis, sign in (("left", "dx", -1), ("right", "dx", 1), ("up", "dy", -1), ("down", "dy", 1)):
        pure = [e.index for e in effects if e.direction == d and not e.returns]
        if pure:
            setattr(labels, d, pure[0])
            continue
        scored = [(sign * getattr(e, axis), e.index) for e in effects if getattr(e, axis) is not None and not e.returns]
        scored = [s for s in scored if s[0] >= MOVE_THRESHOLD]
        if scored:
            setattr(labels, d, max(scored, key=lambda s: (s[0], -s[1]))[1])
    fire = [e.index for e in effects if e.spawns_object and e.direction == "none"]
    labels.fire = fire[0] if fire else None
    jump = [e.index for e in effects if e.returns and e.direction.startswith("up")]
    labels.jump = jump[0] if jump else None
    return labels
