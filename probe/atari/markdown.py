"""probe.md: the report for people (and agents) to read."""

from __future__ import annotations

from pathlib import Path

from probe.atari.report import ProbeReport


def write_markdown(report: ProbeReport, path: Path) -> Path:
    """probe.md: the report for people (and agents) to read."""
    r = report

    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:+.1f}"

    def named(i: int | None) -> str:
        return "none" if i is None else f"{i} ({r.action_names[i]})"

    lines = [f"# Probe of {r.game} ({r.task_id})", ""]
    lines.append(
        f"Protocol `{r.protocol}`, obs mode `{r.obs_mode}`, seed {r.seed}. "
        f"**{r.env_steps:,} env steps** ({r.envpool_steps:,} EnvPool steps + {r.ale_frames:,} ale-py frames), "
        f"{r.env_frames:,} frames, {r.wall_seconds:.1f} s." + (" **Partial: the budget ran out.**" if r.partial else "")
    )
    lines += ["", "## Actions", ""]
    lines.append(f"Warm-up: {r.warmup_steps} NOOP steps before input has a visible effect; each action then held {r.hold_steps} steps.")
    lines += ["", "| # | name | effect | dx | dy | max dx | max dy | same as | spawns | RAM bytes changed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in r.actions:
        effect = "no-op" if e.is_noop else e.direction + (" and back" if e.returns else "")
        if e.name_matches_direction is False:
            effect += " (name says otherwise)"
        same = "" if e.equivalent_to is None else f"{e.equivalent_to} {r.action_names[e.equivalent_to]}"
        ram = ", ".join(map(str, e.ram_bytes_changed[:8])) + (" ..." if len(e.ram_bytes_changed) > 8 else "")
        lines.append(f"| {e.index} | {e.name} | {effect} | {fmt(e.dx)} | {fmt(e.dy)} | {fmt(e.max_abs_dx)} | {fmt(e.max_abs_dy)} | {same} | {'yes' if e.spawns_object else ''} | {ram} |")
    m = r.movement
    lines += ["", f"Movement: left = {named(m.left)}, right = {named(m.right)}, up = {named(m.up)}, down = {named(m.down)}, fire = {named(m.fire)}, jump = {named(m.jump)}."]
    lines += ["", "## Player and objects", ""]
    if r.background_colour:
        lines.append(f"Background colour {r.background_colour} (#{bytes(r.background_colour).hex()}).")
    if r.playfield:
        p = r.playfield
        lines.append(f"Playfield (where the player and objects were seen): x {p.left}..{p.right}, y {p.top}..{p.bottom}.")
    if r.changing_region:
        p = r.changing_region
        lines.append(f"Pixels that changed during discovery: x {p.left}..{p.right}, y {p.top}..{p.bottom}.")
    lines += ["", "| name | colour | size (w x h) | area | per frame | visible | speed mean/p95 (px/step) | x range | y range | touching it (touches) |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for o in ([r.player] if r.player else []) + r.objects:
        touch = "–" if o is r.player else f"{o.contact} ({o.contacts})"
        lines.append(
            f"| {o.name} | {o.colour} {o.colour_hex} | {o.width:g} x {o.height:g} | {o.area:g} | {o.instances_per_frame:g} | {o.visible_fraction:.0%} | "
            f"{o.mean_speed:.2f} / {o.speed_p95:.2f} | {o.x_range[0]:g}..{o.x_range[1]:g} | {o.y_range[0]:g}..{o.y_range[1]:g} | {touch} |"
        )
    if r.player:
        lines.append(f"\n{_player_axes(r.player_moves_x, r.player_moves_y)}")
    lines += ["", "## RAM", ""]
    if not r.ram_analysis:
        lines.append("Vision mode: RAM analysis skipped (no RAM was read).")
    else:
        lines += ["Best bytes per label (pixel = a * ram + b, fitted robustly; lag 1 = RAM of the step before the frame):", "",
                  "| label | address | r | r (inliers) | inliers | a | b | lag | rmse (px) | within 2 px | frames | runners-up |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, fits in r.ram_fits.items():
            f = fits[0]
            others = ", ".join(f"{g.address} ({g.r:+.2f})" for g in fits[1:])
            lines.append(
                f"| {label} | {f.address} (0x{f.address + 0x80:02X}) | {f.r:+.3f} | {f.r_inliers:+.3f} | {f.inliers:.0%} | {f.a:.3f} | {f.b:.2f} | "
                f"{f.lag} | {f.rmse:.2f} | {f.within_2px:.0%} | {f.n} | {others} |"
            )
        if r.lives:
            lv = r.lives
            off = f", value = lives {lv.offset:+d}" if lv.offset is not None else f", values by lives {lv.value_by_lives}"
            lines.append(f"\nLives byte: ram[{lv.address}] (agreement with {lv.events} life losses F1 {lv.f1}, consistency {lv.consistency}{off}).")
        else:
            lines.append(f"\nLives byte: not found (lives at start: {r.lives_start}; no life was lost, or no byte tracked the losses).")
        if r.room_candidates:
            lines.append("\nRoom/level candidates:")
            for c in r.room_candidates:
                lines.append(
                    f"- ram[{c.address}]: {c.n_values} values, {c.changes} changes, "
                    f"screen-change agreement {_share(c.screen_change_agreement)}, layout redrawn when perturbed {_share(c.layout_change)}"
                )
        else:
            lines.append("\nRoom/level candidates: none.")
    if r.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    if r.images:
        lines += ["", "## Pictures", ""] + [f"![{name}]({name})" for name in r.images]
    path.write_text("\n".join(lines) + "\n")
    return path


def _player_axes(moves_x: bool, moves_y: bool) -> str:
    """'The player moves along y (up and down), not along x.' in words, not Python booleans."""
    axes = [a for a, moves in (("x (left and right)", moves_x), ("y (up and down)", moves_y)) if moves]
    if not axes:
        return "The player did not move along x or y under any action."
    if len(axes) == 2:
        return "The player moves along both x (left and right) and y (up and down)."
    return f"The player moves along {axes[0]}, not along {'y' if moves_x else 'x'}."


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0%}"
