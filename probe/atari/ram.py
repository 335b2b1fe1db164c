"""Phase 3, RAM analysis: regress labels on RAM bytes, find the lives byte and room bytes."""

from __future__ import annotations

from collections import Counter

import numpy as np

from probe.atari.recording import Recording
from probe.atari.report import LivesByte, RamFit, RoomCandidate


def pearson(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of X with y (0 where a column is constant)."""
    Xc = X - X.mean(axis=0)
    yc = y - y.mean()
    denom = np.sqrt((Xc**2).sum(axis=0) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Xc.T @ yc) / denom
    return np.nan_to_num(r)


def robust_line(x: np.ndarray, y: np.ndarray, rounds: int = 3) -> tuple[float, float, np.ndarray]:
    """y ~ a*x + b fitted by least squares, then refitted on the frames it predicts within
    max(3 px, 3 x the median miss): a few mislabelled frames (a score digit taken for a
    hidden paddle) must not bend the line. Returns a, b and the inlier mask."""
    inliers = np.ones(x.size, dtype=bool)
    a, b = 0.0, float(np.median(y))
    for _ in range(rounds):
        xs, ys = x[inliers], y[inliers]
        if xs.size < 2 or xs.var() == 0:
            break
        a = float(np.mean((xs - xs.mean()) * (ys - ys.mean())) / xs.var())
        b = float(ys.mean() - a * xs.mean())
        resid = np.abs(a * x + b - y)
        inliers = resid <= max(3.0, 3.0 * float(np.median(resid[inliers])))
    return a, b, inliers


def fit_ram(rec: Recording, top: int = 3, pool: int = 5, min_frames: int = 20) -> dict[str, list[RamFit]]:
    """For every position label, the RAM bytes (lag 0 or 1) that best predict it linearly.

    The `pool` bytes with the highest |Pearson r| per lag are refitted robustly
    (robust_line) and ranked by |r on the inliers| x the inlier fraction."""
    if not rec.sample_step:
        return {}
    env = np.asarray(rec.sample_env)
    step = np.asarray(rec.sample_step)
    ram0 = rec.rams[env, step].astype(np.float64)
    has_prev = (step > 0) & ~rec.fresh[env, step]
    ram1 = rec.rams[env, np.maximum(step - 1, 0)].astype(np.float64)
    names = sorted({k for d in rec.sample_labels for k in d})
    fits: dict[str, list[RamFit]] = {}
    for name in names:
        y = np.array([d.get(name, np.nan) for d in rec.sample_labels])
        visible = ~np.isnan(y)
        if visible.sum() < min_frames:
            continue  # (almost) never seen
        if np.mean(np.abs(y[visible] - np.median(y[visible])) <= 1.5) >= 0.9:
            continue  # does not move along this axis (a few mislabelled frames aside)
        scored = []
        for lag, X, ok in ((0, ram0, visible), (1, ram1, visible & has_prev)):
            if ok.sum() < min_frames:
                continue
            r = pearson(X[ok], y[ok])
            for addr in np.argsort(-np.abs(r))[:pool]:
                x, target = X[ok, addr], y[ok]
                a, b, inl = robust_line(x, target)
                r_in = float(pearson(x[inl, None], target[inl])[0]) if inl.sum() > 2 else 0.0
                resid = np.abs(a * x + b - target)
                fit = RamFit(
                    label=name, address=int(addr), r=round(float(r[addr]), 4), r_inliers=round(r_in, 4),
                    inliers=round(float(inl.mean()), 3), a=round(a, 4), b=round(b, 3), lag=lag,
                    rmse=round(float(np.sqrt(np.mean(resid[inl] ** 2))) if inl.any() else 0.0, 3),
                    within_2px=round(float(np.mean(resid <= 2.0)), 3), n=int(ok.sum()),
                )
                scored.append((round(abs(r_in) * fit.inliers, 3), -lag, fit))
        # Best score first; a lag-0 fit wins ties (it needs no memory of the previous step).
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        seen, best = set(), []
        for _, _, f in scored:
            if f.address not in seen:
                seen.add(f.address)
                best.append(f)
        fits[name] = best[:top]
    return fits


def find_lives_byte(rec: Recording, window: int = 2) -> LivesByte | None:
    """The byte whose changes coincide with drops of info['lives'] (None if no life was lost)."""
    lives, rams, fresh = rec.lives, rec.rams, rec.fresh
    if lives.shape[1] < 2:
        return None
    drop = np.zeros_like(fresh)
    drop[:, 1:] = (lives[:, 1:] < lives[:, :-1]) & ~fresh[:, 1:]
    events = int(drop.sum())
    if events == 0:
        return None
    changed = np.zeros(rams.shape, dtype=bool)
    changed[:, 1:] = (rams[:, 1:] != rams[:, :-1]) & ~fresh[:, 1:, None]
    near = drop.copy()  # steps within `window` of a life loss
    for s in range(1, window + 1):
        near[:, s:] |= drop[:, :-s]
        near[:, :-s] |= drop[:, s:]
    best = None
    for addr in range(rams.shape[2]):
        c = changed[:, :, addr]
        if not c.any():
            continue
        hits = 0
        for e, t in zip(*np.nonzero(drop)):
            hits += bool(c[e, max(0, t - window) : t + window + 1].any())
        recall = hits / events
        precision = (c & near).sum() / c.sum()
        f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
        if best is None or f1 > best[0]:
            best = (f1, addr)
    if best is None or best[0] < 0.5:
        return None
    f1, addr = best
    values = rams[:, :, addr].ravel().astype(int)
    lv = lives.ravel().astype(int)
    usual = {n: Counter(values[lv == n]).most_common(1)[0][0] for n in np.unique(lv)}  # lives -> value
    consistency = float(np.mean([usual[n] == v for n, v in zip(lv, values)]))
    offsets = {int(v) - int(n) for n, v in usual.items()}
    return LivesByte(
        address=int(addr), f1=round(f1, 3), events=events, consistency=round(consistency, 3),
        offset=offsets.pop() if len(offsets) == 1 else None, value_by_lives={int(n): int(v) for n, v in usual.items()},
    )


def passive_room_candidates(rec: Recording, big_change: float = 0.25, window: int = 2, max_values: int = 32) -> tuple[list[RoomCandidate], list[int]]:
    """Rare, low-cardinality bytes and how often their changes meet whole-screen changes.

    Returns (candidates with screen-change evidence, addresses of all rare low-card bytes)."""
    rams, fresh = rec.rams, rec.fresh
    steps = rams.shape[0] * rams.shape[1]
    if rams.shape[1] < 2:
        return [], []
    big = (rec.screen_change >= big_change) & ~fresh
    big_near = big.copy()
    for s in range(1, window + 1):
        big_near[:, s:] |= big[:, :-s]
        big_near[:, :-s] |= big[:, s:]
    changed = np.zeros(rams.shape, dtype=bool)
    changed[:, 1:] = (rams[:, 1:] != rams[:, :-1]) & ~fresh[:, 1:, None]
    rare, out = [], []
    for addr in range(128):
        n_values = len(np.unique(rams[:, :, addr]))
        n_changes = int(changed[:, :, addr].sum())
        if n_values > max_values or n_changes > 0.01 * steps:
            continue
        rare.append(addr)
        if n_changes and big.any():
            agree = float((changed[:, :, addr] & big_near).sum() / n_changes)
            if agree >= 0.5:
                out.append(RoomCandidate(address=addr, n_values=n_values, changes=n_changes, screen_change_agreement=round(agree, 3)))
    out.sort(key=lambda c: -c.screen_change_agreement)
    return out, rare


def merge_room_candidates(passive: list[RoomCandidate], layout: dict[int, float], rec: Recording | None, min_layout: float = 0.15, top: int = 3) -> list[RoomCandidate]:
    """Room candidates: passive evidence first, then bytes whose perturbation redraws at
    least `min_layout` of the layout's edge pixels (strongest first)."""
    by_addr = {c.address: c for c in passive}
    for addr, change in layout.items():
        if addr in by_addr:
            by_addr[addr].layout_change = change
        elif change >= min_layout and rec is not None:
            values = rec.rams[:, :, addr]
            changes = int(((values[:, 1:] != values[:, :-1]) & ~rec.fresh[:, 1:]).sum())
            by_addr[addr] = RoomCandidate(address=addr, n_values=len(np.unique(values)), changes=changes, layout_change=change)
    out = sorted(by_addr.values(), key=lambda c: (-(c.screen_change_agreement or 0), -(c.layout_change or 0)))
    return out[:top]
