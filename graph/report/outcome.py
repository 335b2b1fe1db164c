"""What a run came to, in words, for the run's README and its report: what capped the score
(episodes cut as stalls or at the episode cap, a plateau, the budget), read from the ledger
rows and the stop reason; and repeated events grouped with their counts (the same direction
rejected six times is one line saying "6 times")."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from record.ledger import is_holdout


def _scored_dev(records: list) -> list:
    return [r for r in records if r.status == "ok" and r.score_mean is not None and r.role != "finish"
            and r.kind in ("evaluation", "tuning")]  # fmt: skip


def best_dev_row(records: list):
    """The first dev evaluation (by any role) that reached the run's best score, or None."""
    dev = _scored_dev(records)
    if not dev:
        return None
    best = max(r.score_mean for r in dev)
    return next(r for r in dev if r.score_mean >= best)


def _num(value) -> str:
    return f"{value:,.4g}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"


def _stall_words(row) -> str | None:
    """'1 of 1 episodes cut as stalls: no reward for 9,000 frames from step 70,100 while
    tracked bytes 49, 54 stood still (pressed FIRE 8,990 times)', or None without a stall."""
    stalls = [s for t, s in zip(row.truncated, list(row.stalls) + [None] * len(row.truncated)) if t == "stall"]
    if not stalls:
        return None
    n = len(row.truncated)
    what = f"{len(stalls)} of {n} episodes were cut as stalls" if n > 1 else "its episode was cut as a stall"
    first = next((s for s in stalls if s), None)
    if not first:
        return what
    watched = ", ".join(first.get("watched") or {}) or "none"
    actions = first.get("actions") or {}
    pressed = ", ".join(f"{a} {c:,} times" for a, c in list(actions.items())[:2])
    return (f"{what}: no reward for {first.get('steps', 0):,} steps from step {first.get('since_step', 0):,} while the "
            f"tracked bytes ({watched}) stood still" + (f"; it kept pressing {pressed}" if pressed else ""))  # fmt: skip


def _episode_cap(rows: list) -> str | None:
    """'the best policy's episodes hit the 12,000-frame episode cap with the game still going
    (1 of 1 on dev seeds, trial 6; 3 of 3 on holdout seeds): ...', or None when none did."""
    parts, cap = [], None
    for where, row in rows:
        cut = sum(t == "time_limit" for t in row.truncated)
        if cut:
            parts.append(f"{cut} of {len(row.truncated)} on {where}")
            cap = cap or (row.protocol_settings or {}).get("max_episode_frames")
    if not parts:
        return None
    limit = f"the {cap:,}-frame episode cap" if cap else "the episode cap"
    return (f"the best policy's episodes hit {limit} with the game still going ({'; '.join(parts)}): "
            "its score is what it had by then")


def score_caps(records: list, stop_reason: str | None) -> list[str]:
    """What capped the run's score, most telling first: cuts of the best policy's episodes
    (stall, episode cap) on dev and holdout seeds, stalls elsewhere in the run, a plateau."""
    caps = []
    best = best_dev_row(records)
    holdout = next((r for r in reversed(records) if is_holdout(r) and r.status == "ok"), None)
    first = f"dev seeds in trial {best.trial}, the first to score {_num(best.score_mean)}" if best else ""
    rows = ([(first, best)] if best else []) + ([("holdout seeds", holdout)] if holdout else [])
    for where, row in rows:
        words = _stall_words(row)
        if words:
            caps.append(f"the best policy on {where}: {words}" if row is best else
                        f"the best policy on {where} (score {_num(row.score_mean)}): {words}")  # fmt: skip
    cap = _episode_cap(rows)
    if cap:
        caps.append(cap)
    others = [r for r in _scored_dev(records) if r is not best and "stall" in r.truncated]
    if others:
        cut = sum(t == "stall" for r in others for t in r.truncated)
        trials = ", ".join(str(r.trial) for r in others[:8]) + (" ..." if len(others) > 8 else "")
        caps.append(f"{cut} more episode{'s' if cut != 1 else ''} cut as stalls in other evaluations (trials {trials})")
    reason = stop_reason or ""
    if reason.startswith("plateau"):
        caps.append(f"the run stopped on a {reason}")
    elif reason.startswith(("iteration limit", "cost")):
        caps.append(f"the run stopped at the {reason}")
    return caps


def cap_headline(records: list, stop_reason: str | None) -> str:
    """One line for the first lines of a README or report: the first cap, or the stop reason."""
    caps = score_caps(records, stop_reason)
    if caps:
        return caps[0] + (f" (and {len(caps) - 1} more, below)" if len(caps) > 1 else "")
    if (stop_reason or "").startswith("target"):
        return f"nothing: {stop_reason}"
    return "no stall, episode cap or plateau held it: the run ended with " + (stop_reason or "no stop reason recorded")


# -- repeated events, grouped --------------------------------------------------------------------------


def group_by(items: Iterable, key: Callable) -> list[list]:
    """Items with the same key together, groups in the order their first item came."""
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def group_runs(items: Iterable, key: Callable) -> list[list]:
    """Consecutive items with the same key together (a timeline keeps its order)."""
    groups: list[list] = []
    for item in items:
        if groups and key(groups[-1][-1]) == key(item):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _score_span(scores: list) -> str:
    known = sorted(s for s in scores if s is not None)
    if not known:
        return "no score"
    lo, hi = _num(known[0]), _num(known[-1])
    return f"score {lo}" if lo == hi else f"scores {lo} to {hi}"


def failed_direction_lines(rejected: list[dict], limit: int = 10) -> list[str]:
    """Rejected directions grouped by direction, most often tried first, each with its count,
    trials and scores: '- tuned parameters: no change: 6 times (scores 3 to 4; trials 5, 9, ...)'."""
    groups = sorted(group_by(rejected, lambda h: h.get("direction")), key=lambda g: -len(g))
    lines = []
    for g in groups[:limit]:
        trials = list(dict.fromkeys(str(h.get("trial")) for h in g if h.get("trial") is not None))
        shown = ", ".join(trials[:6]) + (", ..." if len(trials) > 6 else "")
        where = f"trial{'s' if len(trials) > 1 else ''} {shown}" if trials else "not evaluated"
        times = f": {len(g)} times" if len(g) > 1 else ""
        lines.append(f"- {g[0].get('direction')}{times} ({_score_span([h.get('score') for h in g])}; {where})")
    if len(groups) > limit:
        lines.append(f"- ... and {len(groups) - limit} more directions (`python -m graph.trace` lists every iteration)")
    return lines
