"""The probe's pictures: objects.png, actions.png and room.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from probe.atari.actions import ActionExperiment
from probe.atari.report import ActionEffect, RoomCandidate


BOX_COLOURS = [(255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0), (0, 255, 0), (255, 255, 255), (128, 128, 255)]


def draw_objects(rgb: np.ndarray, boxes: list, path: Path, scale: int = 3) -> Path:
    """Save the frame enlarged with every detected blob boxed and named."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    names = sorted({name for name, _ in boxes}, key=lambda s: (s != "player", s))
    for name, blobs in boxes:
        colour = BOX_COLOURS[names.index(name) % len(BOX_COLOURS)]
        for i in range(len(blobs)):
            x0, y0 = blobs.x0[i] * scale - 2, blobs.y0[i] * scale - 2
            x1, y1 = (blobs.x1[i] + 1) * scale + 1, (blobs.y1[i] + 1) * scale + 1
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
        draw.text((blobs.x0[0] * scale, max(0, blobs.y0[0] * scale - 14)), name, fill=colour)
    img.save(path)
    return path


def draw_actions(exps: list[ActionExperiment], effects: list[ActionEffect], path: Path) -> Path:
    """Contact sheet: per start state (A, B, ...), each action's last hold frame, with the
    pixels that differ from the NOOP copy's frame tinted magenta."""
    from record.video import contact_sheet

    frames, labels = [], []
    for s, exp in enumerate(exps):
        noop = exp.frames[0, -1].transpose(1, 2, 0)
        for e in effects:
            rgb = exp.frames[e.index, -1].transpose(1, 2, 0).copy()
            changed = (rgb != noop).any(axis=-1)
            rgb[changed] = (rgb[changed] // 2 + np.array([127, 0, 127])).astype(np.uint8)
            frames.append(rgb)
            labels.append(f"{chr(65 + s)}: {e.index} {e.name}")
    warmup = len(exps[0].prefix)
    states = [f"A: after {warmup} NOOPs"]
    for s, exp in enumerate(exps[1:], start=1):
        states.append(f"{chr(65 + s)}: A + {len(exp.prefix) - warmup} x action {exp.prefix[-1]}")  # action 0: waited
    title = f"each action held {exps[0].frames.shape[1] - 1} steps; " + ", ".join(states) + "; magenta = differs from NOOP"
    return contact_sheet(frames, labels, path, columns=min(6, len(effects)), title=title)


def draw_room(examples: list, candidates: list[RoomCandidate], path: Path) -> Path:
    from record.video import contact_sheet

    chosen = {c.address for c in candidates}
    picked = [(a, rgb) for a, rgb in examples if a == -1 or a in chosen]
    labels = ["unperturbed" if a == -1 else f"ram[{a}] +-1" for a, _ in picked]
    return contact_sheet([rgb for _, rgb in picked], labels, path, columns=4, title="RAM perturbation: layout bytes")
