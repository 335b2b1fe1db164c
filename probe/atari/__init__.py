"""The builtin prober: discover a game's structure from controlled rollouts, for any Atari game.

    python -m probe.atari --game breakout --out runs/breakout/probe
    report = probe_game(resolve_game("pong"), Path("out"), StepMeter(budget=30_000))

Nothing here knows any particular game. Everything is measured:

1. **Actions.** Under protocol `hl` every reset is byte-identical, so one EnvPool env per
   action, all with the same seed, are identical copies of the game. The prober finds how
   long the game ignores input (an adaptive warm-up: hold each action from the start and note
   when the frames first diverge), replays that many NOOPs in every copy, then holds a
   different action in each copy for `hold_steps` steps and compares against the NOOP copy:
   who moved where, which actions are visually identical, which make something appear. It
   repeats this from a few more start states: after waiting longer (if some action did
   nothing yet) and after holding the strongest mover along each axis (a player that started
   against a wall, or above a ladder); a start state that costs a life is skipped.
2. **Player.** The colour that the actions *move* (it vanishes from the NOOP copy's pixels and
   appears elsewhere; a launched shot only appears) is the player's colour; its blobs that
   moved give the player's size and home, and the experiments give the axes it can move on.
   A multicoloured sprite is kept whole by grouping same-coloured pixels a row or two apart.
3. **Moving objects.** A rollout of mixed random and held actions; pixels that never changed
   during its first part are scenery, the rest is segmented into one-colour blobs, grouped by
   colour and size into object types, and the types whose blobs move are kept (ball,
   enemies, projectiles); blobs that sat unchanged for a while (score digits) are ignored.
4. **RAM.** Every sampled frame of that rollout is labelled with the player's and each
   object type's pixel position, and each of the 128 RAM bytes (this step and the step
   before) is correlated with each label; the best bytes per label come with a robust linear
   map `pixel = a * ram + b`. The lives byte is the byte that changes exactly when
   `info["lives"]` drops; room/level bytes are rarely-changing, low-cardinality bytes that
   change with whole-screen changes, or, if the rollout never changed rooms, whose
   perturbation (ale-py `setRAM` on a saved state) redraws the screen layout.

Every env step is charged to the StepMeter as kind "probe", including the frames emulated in
ale-py for the perturbation experiment (one step per frame). Budget policy: a meter that is
already spent raises BudgetExhausted before anything runs; a budget that runs out during the
probe never gets exceeded: the probe stops the current phase, skips what is left, and returns
(and writes) a report with `partial=True` and a note saying what was cut.

Outputs in `out_dir` (existing files are never overwritten; FileExistsError up front):
`probe.json` (the ProbeReport), `probe.md` (a human summary), `objects.png` (a frame with the
player and objects boxed), `actions.png` (each action's effect, changes tinted magenta) and,
when the perturbation experiment finds a layout byte, `room.png`.

The package, one module per concern: report.py (the schema of probe.json), segmentation.py
(colour keys and blobs), metered_env.py (the charged EnvPool batch), tracking.py (player
model and following), actions.py (phase 1), objects.py and recording.py (phase 2), ram.py
(phase 3), perturb.py (the ale-py experiment), drawing.py and markdown.py (outputs), run.py
(probe_game, the orchestration) and __main__.py (the command line).
"""

from probe.atari.actions import ActionExperiment, action_phase, movement_labels
from probe.atari.metered_env import BudgetCut, MeteredEnv
from probe.atari.ram import find_lives_byte, fit_ram, passive_room_candidates
from probe.atari.recording import Labeller, Recording, record
from probe.atari.report import (
    ActionEffect,
    LivesByte,
    MovementLabels,
    ObjectInfo,
    Playfield,
    ProbeConfig,
    ProbeReport,
    RamFit,
    RoomCandidate,
)
from probe.atari.run import OUTPUT_FILES, probe_game
from probe.atari.segmentation import Blobs, find_blobs, find_groups, pack_rgb
from probe.atari.tracking import PlayerModel, PlayerTracker

__all__ = [
    "OUTPUT_FILES",
    "ActionEffect",
    "ActionExperiment",
    "Blobs",
    "BudgetCut",
    "Labeller",
    "LivesByte",
    "MeteredEnv",
    "MovementLabels",
    "ObjectInfo",
    "PlayerModel",
    "PlayerTracker",
    "Playfield",
    "ProbeConfig",
    "ProbeReport",
    "RamFit",
    "Recording",
    "RoomCandidate",
    "action_phase",
    "find_blobs",
    "find_groups",
    "find_lives_byte",
    "fit_ram",
    "movement_labels",
    "pack_rgb",
    "passive_room_candidates",
    "probe_game",
    "record",
]
