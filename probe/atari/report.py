"""The probe's report schema: what probe.json holds (ProbeReport and its parts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ProbeConfig(BaseModel):
    """Knobs of the probe (generic; none is tuned for a particular game)."""

    hold_steps: int = Field(32, ge=4, description="steps each action is held in the action experiment")
    max_warmup_steps: int = Field(600, ge=0, description="give up waiting for the game to respond after this")
    record_envs: int = Field(4, ge=1, description="parallel envs in the recording rollout")
    record_steps: int = Field(8000, ge=0, description="env steps of the recording rollout (all envs together)")
    discover_steps: int = Field(240, ge=8, description="steps per env (after warm-up) used to discover object types")
    sample_stride: int = Field(2, ge=1, description="label every n-th frame of the recording")
    rest_steps: int = Field(64, ge=1, description="a blob unchanged this long is resting scenery (a score digit), not an object")
    perturb_ram: bool = Field(True, description="run the ale-py RAM perturbation experiment (ram mode only)")


class ActionEffect(BaseModel):
    """What holding one action does, compared with holding NOOP from the same state."""

    index: int
    name: str
    dx: float | None = Field(None, description="player x displacement vs NOOP after the hold (pixels, + = right)")
    dy: float | None = Field(None, description="player y displacement vs NOOP after the hold (pixels, + = down)")
    max_abs_dx: float | None = Field(None, description="largest |x offset| from the NOOP copy during the hold")
    max_abs_dy: float | None = Field(None, description="largest |y offset| from the NOOP copy during the hold")
    first_move: list[float] | None = Field(None, description="[step, dx, dy]: the offset when it first reached 3 px (before gravity or walls interfere)")
    direction: str = Field("none", description="'left', 'up-right', ... from first_move; 'none' if the player never left the NOOP copy's position")
    returns: bool = Field(False, description="moved, then ended back where the NOOP copy is (a jump)")
    name_matches_direction: bool | None = Field(None, description="whether the action's name describes its measured direction")
    is_noop: bool = Field(False, description="frames identical to the NOOP copy for the whole hold, in every start state")
    equivalent_to: int | None = Field(None, description="lowest other action with identical frames (and RAM in ram mode) in every start state")
    spawns_object: bool = Field(False, description="a new blob appears away from the player (shot, ball launch)")
    ram_only_effect: bool = Field(False, description="frames match NOOP but RAM differs (input latched, no visible effect)")
    ram_bytes_changed: list[int] = Field(default_factory=list, description="RAM bytes that differ from the NOOP copy (ram mode)")


class MovementLabels(BaseModel):
    """Which action index moves the player in each screen direction (None: no such action)."""

    left: int | None = None
    right: int | None = None
    up: int | None = None
    down: int | None = None
    fire: int | None = Field(None, description="lowest action that spawns an object without moving the player")
    jump: int | None = Field(None, description="lowest action that moves the player up and back (returns)")


class ObjectInfo(BaseModel):
    """A kind of blob: one colour, a typical size, and how it moves."""

    name: str
    colour: list[int] = Field(description="RGB")
    colour_hex: str
    width: float
    height: float
    area: float
    instances_per_frame: float = Field(description="mean count per frame when present")
    visible_fraction: float = Field(description="fraction of labelled frames in which it was seen")
    mean_speed: float = Field(description="pixels per env step, mean over tracked moves")
    speed_p95: float = Field(description="95th percentile of pixels per env step")
    x_range: list[float] = Field(description="[min, max] of the centre x seen")
    y_range: list[float] = Field(description="[min, max] of the centre y seen")
    labels: list[str] = Field(default_factory=list, description="position labels regressed against RAM")
    # What touching it does, from the recording's contacts with the player (probe/atari/contacts.py).
    contact: Literal["reward", "harm", "nothing", "unknown"] = Field(
        "unknown", description="reward: points follow a touch; harm: a life or points are lost; unknown: too few touches")
    contacts: int = Field(0, description="labelled frames in which it touched the player")


class RamFit(BaseModel):
    """RAM byte `address` (read `lag` steps before the frame) predicts `label` as a*ram+b."""

    label: str
    address: int
    r: float = Field(description="Pearson correlation over all frames where the label is visible")
    r_inliers: float = Field(description="Pearson correlation over the frames the robust line fits (see inliers)")
    inliers: float = Field(description="fraction of frames within max(3 px, 3 x median miss) of the robust line")
    a: float
    b: float
    lag: int = Field(description="0: RAM of the same step as the frame; 1: RAM of the step before")
    rmse: float = Field(description="pixels, of the linear map on the inlier frames")
    within_2px: float = Field(description="fraction of fitted frames the linear map predicts within 2 pixels")
    n: int = Field(description="frames used")


class LivesByte(BaseModel):
    """The RAM byte that changes when info['lives'] drops."""

    address: int
    f1: float = Field(description="agreement between the byte's changes and life losses")
    events: int = Field(description="life losses seen")
    consistency: float = Field(description="fraction of steps where the byte equals its usual value for the current lives")
    offset: int | None = Field(None, description="ram - lives when that difference is constant")
    value_by_lives: dict[int, int] = Field(default_factory=dict, description="the byte's usual value for each lives count seen")


class RoomCandidate(BaseModel):
    """A rarely-changing, low-cardinality byte that goes with whole-screen changes."""

    address: int
    n_values: int = Field(description="distinct values seen in the recording")
    changes: int = Field(description="times it changed in the recording")
    screen_change_agreement: float | None = Field(None, description="share of its changes that coincide with whole-screen changes")
    layout_change: float | None = Field(None, description="fraction of edge pixels redrawn when the byte is perturbed (ale-py)")


class Playfield(BaseModel):
    top: int
    bottom: int
    left: int
    right: int


class ProbeReport(BaseModel):
    """Everything the prober found out about one game; see probe.md for the readable version."""

    game: str
    task_id: str
    protocol: str
    obs_mode: str
    seed: int
    config: ProbeConfig
    action_names: list[str]
    warmup_steps: int | None = Field(None, description="NOOP steps before actions change anything on screen")
    hold_steps: int
    actions: list[ActionEffect] = Field(default_factory=list)
    movement: MovementLabels = Field(default_factory=MovementLabels)
    player: ObjectInfo | None = None
    player_moves_x: bool = False
    player_moves_y: bool = False
    objects: list[ObjectInfo] = Field(default_factory=list)
    background_colour: list[int] | None = None
    playfield: Playfield | None = Field(None, description="bounds of where the player and objects were seen")
    changing_region: Playfield | None = Field(None, description="bounds of all pixels that changed during discovery")
    ram_analysis: bool = Field(description="False in vision mode: no RAM was read")
    ram_fits: dict[str, list[RamFit]] = Field(default_factory=dict, description="label -> best RAM bytes, best first")
    lives_start: int | None = None
    lives: LivesByte | None = None
    room_candidates: list[RoomCandidate] = Field(default_factory=list)
    env_steps: int = Field(0, description="all env steps charged to the meter (EnvPool steps + ale-py frames)")
    env_frames: int = 0
    envpool_steps: int = 0
    ale_frames: int = 0
    recorded_steps: int = 0
    labelled_frames: int = 0
    wall_seconds: float = 0.0
    partial: bool = Field(False, description="True if the budget ran out and some phases were cut")
    notes: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)

    def best_ram(self, label: str) -> RamFit | None:
        """The best RAM fit for a label ('player_x', 'obj0_y', ...), or None."""
        fits = self.ram_fits.get(label)
        return fits[0] if fits else None
