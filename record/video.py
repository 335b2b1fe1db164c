"""Video and picture tools for looking at episodes: H.264 mp4 files and labelled PNG contact sheets.

- `Mp4Writer` / `write_mp4` stream RGB frames (H x W x 3 uint8) into an mp4, one frame at a
  time, so a 100k-frame episode never sits in memory.
- `read_mp4` decodes a video back and reports its frame count and size, to verify a file.
- `contact_sheet` lays frames out in a labelled grid; `sheet_for_moments` gives each moment
  (e.g. "life lost at step 812") its own labelled row of frames.

Nothing here overwrites an existing file: every writer raises FileExistsError instead. Files
are written under a temporary name in the target folder and only get their final name once
complete, so a killed process never leaves a half-written file under the final name.

Encoding uses the ffmpeg binary bundled with imageio-ffmpeg; no system ffmpeg is needed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Layout of contact sheets, in pixels. Public so callers and tests can predict sheet sizes:
#   width  = GAP + columns * (frame_width * scale + GAP)
#   height = GAP + (HEADER_HEIGHT + GAP if title) + per moment label (HEADER_HEIGHT + GAP)
#            + per row of frames (frame_height * scale + LABEL_HEIGHT + GAP)
LABEL_HEIGHT = 14
"""Height of the caption strip drawn under every frame (e.g. "step 1234")."""
HEADER_HEIGHT = 16
"""Height of a full-width text strip: the sheet title and each moment's row label."""
GAP = 2
"""Spacing between cells and around the border of a sheet."""

SHEET_BACKGROUND = (16, 16, 16)
LABEL_BACKGROUND = (40, 40, 40)
TITLE_BACKGROUND = (30, 30, 80)
MOMENT_BACKGROUND = (90, 25, 25)
TEXT_COLOUR = (255, 255, 255)

DEFAULT_FPS = 60
"""Atari runs at 60 frames per second."""
DEFAULT_CRF = 18
"""x264 constant rate factor: 0 is lossless, 51 is worst; 18 is close to visually lossless."""


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _refuse_existing(path: Path) -> None:
    """Raise FileExistsError if `path` already exists (we never overwrite anything)."""
    if path.exists():
        raise FileExistsError(f"refusing to overwrite existing file: {path}")


def _reserve_temp(path: Path) -> Path:
    """Create the parent folder and an empty, uniquely named temp file next to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    os.close(fd)
    os.chmod(
        tmp, 0o644
    )  # mkstemp makes 0600 files; results should be readable like any other
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    """Give the finished temp file its final name, atomically and without overwriting.

    A hard link fails if `path` exists, so a file created by someone else while we were
    writing is never clobbered. On file systems without hard links we fall back to a rename.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise FileExistsError(f"refusing to overwrite existing file: {path}") from None
    except OSError:
        _refuse_existing(path)
        os.rename(tmp, path)
        return
    tmp.unlink()


def _as_rgb_frame(frame: Any) -> np.ndarray:
    """Check a frame is H x W x 3 uint8 (an H x W grey frame is expanded to RGB)."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise TypeError(
            f"frames must be uint8, got {arr.dtype} (convert with .astype(np.uint8))"
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"frames must be H x W x 3 RGB, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"frames must not be empty, got shape {arr.shape}")
    return arr


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one edge pixel; yuv420p needs even dimensions."""
    pad_h = frame.shape[0] % 2
    pad_w = frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


# --------------------------------------------------------------------------------------------
# mp4 writing and reading
# --------------------------------------------------------------------------------------------


class Mp4Writer:
    """Stream RGB frames into an H.264 (libx264, yuv420p) mp4 file, one frame at a time.

    Use as a context manager:

        with Mp4Writer("runs/x/episode.mp4", fps=60) as writer:
            for frame in frames:          # each H x W x 3 uint8
                writer.append(frame)
        print(writer.frames_written)

    - Refuses to overwrite: raises FileExistsError if `path` already exists.
    - Creates missing parent folders.
    - Frames go to a hidden temp file (".<name>.<random>.partial") in the same folder, which is
      renamed to `path` only by a successful `close()`. If the `with` block raises, the temp
      file is deleted and nothing appears under `path`.
    - The frame size is fixed by the first frame; later frames must have the same shape.
      Frames are never rescaled (macro_block_size=1); an odd height or width is padded by one
      edge pixel because yuv420p needs even dimensions (Atari's 210 x 160 is already even).
    - Closing a writer that received no frames raises ValueError and writes nothing: an mp4
      with no frames is not a valid video.

    Attributes:
        path: final location of the video.
        fps: frames per second of the video.
        crf: x264 constant rate factor (0 lossless .. 51 worst).
        frames_written: number of frames appended so far.
        size: (height, width) of the input frames, or None before the first frame.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = DEFAULT_FPS,
        crf: int = DEFAULT_CRF,
    ):
        """Prepare to write `path`. Raises FileExistsError if it exists; nothing is encoded yet."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {crf}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.frames_written = 0
        self.size: tuple[int, int] | None = None
        _refuse_existing(self.path)
        self._tmp_path: Path | None = _reserve_temp(self.path)
        self._encoder: Any = (
            None  # imageio_ffmpeg.write_frames generator, started lazily
        )
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` or `abort()` has run."""
        return self._closed

    def _start(self, height: int, width: int) -> None:
        """Launch ffmpeg for frames of the given (padded, even) size."""
        assert self._tmp_path is not None
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._tmp_path),
            (width, height),
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            fps=self.fps,
            quality=None,  # rate control is set by -crf below
            codec="libx264",
            macro_block_size=1,
            ffmpeg_log_level="error",
            # The temp name does not end in .mp4, so name the container explicitly.
            output_params=["-crf", str(self.crf), "-f", "mp4"],
        )
        self._encoder.send(None)  # seed the generator

    def append(self, frame: np.ndarray) -> None:
        """Encode one H x W x 3 uint8 RGB frame. All frames must have the first frame's shape."""
        if self._closed:
            raise ValueError(f"cannot append to a closed Mp4Writer ({self.path})")
        rgb = _as_rgb_frame(frame)
        height, width = rgb.shape[:2]
        if self.size is None:
            self.size = (height, width)
            padded = _pad_to_even(rgb)
            self._start(padded.shape[0], padded.shape[1])
        elif (height, width) != self.size:
            raise ValueError(
                f"frame {self.frames_written} has size {height}x{width}, "
                f"but this video is {self.size[0]}x{self.size[1]}"
            )
        self._encoder.send(np.ascontiguousarray(_pad_to_even(rgb)))
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding and move the video to its final path, which is returned.

        Raises ValueError (and writes nothing) if no frame was appended, and
        FileExistsError if another file appeared at `path` meanwhile.
        """
        if self._closed:
            return self.path
        self._closed = True
        tmp = self._tmp_path
        self._tmp_path = None
        assert tmp is not None
        try:
            if self._encoder is None:
                raise ValueError(
                    f"no frames were appended; nothing written to {self.path}"
                )
            self._encoder.close()  # waits for ffmpeg to flush and exit
            self._encoder = None
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise OSError(f"ffmpeg produced no output for {self.path}")
            _publish(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Stop encoding and delete the temp file; nothing is written under `path`."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._encoder is not None:
                self._encoder.close()
                self._encoder = None
        finally:
            if self._tmp_path is not None:
                self._tmp_path.unlink(missing_ok=True)
                self._tmp_path = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike[str],
    fps: float = DEFAULT_FPS,
    crf: int = DEFAULT_CRF,
) -> int:
    """Write RGB frames (each H x W x 3 uint8) to a new H.264 mp4 and return how many were written.

    `frames` may be any iterable, including a generator, so long episodes stream through
    without being held in memory. Raises FileExistsError if `path` exists and ValueError if
    `frames` is empty. See `Mp4Writer` for details.
    """
    with Mp4Writer(path, fps=fps, crf=crf) as writer:
        for frame in frames:
            writer.append(frame)
    return writer.frames_written


def _open_reader(path: str | os.PathLike[str]):
    """Start decoding a video: the raw-frame generator and the (width, height) of its frames."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such video: {path}")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    return reader, next(reader)["size"]


def iter_mp4_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a video and yield its frames one at a time as H x W x 3 uint8 RGB arrays.

    Frames of videos written with an odd height or width include the one-pixel padding.
    """
    reader, (width, height) = _open_reader(path)
    try:
        for raw in reader:
            yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


def read_mp4(path: str | os.PathLike[str]) -> tuple[int, tuple[int, int]]:
    """Decode a whole video and return `(frame_count, (height, width))`.

    Every frame is decoded (one at a time), so a truncated or corrupt file shows up as a
    short count or an error. Use it to check that a written video is complete. A video with
    no decodable frames returns `(0, (height, width))` from the container's metadata.
    """
    reader, (width, height) = _open_reader(path)
    try:
        count = sum(1 for _ in reader)
    finally:
        reader.close()
    return count, (int(height), int(width))


# --------------------------------------------------------------------------------------------
# Contact sheets
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in default font (no download needed)."""
    return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, max_width: int) -> str:
    """Shorten `text` with a trailing '…' until it fits in `max_width` pixels."""
    font = _font()
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "…", font=font) > max_width:
        text = text[:-1]
    return text + "…" if text else ""


def _draw_strip(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, fill
) -> None:
    """Fill `box` (x0, y0, x1, y1, exclusive end) and draw `text` in it, left-aligned and centred vertically."""
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    text = _fit_text(draw, text, max(0, x1 - x0 - 4))
    if not text:
        return
    left, top, _, bottom = draw.textbbox((0, 0), text, font=_font())
    y = y0 + (y1 - y0 - (bottom - top)) // 2 - top
    draw.text((x0 + 2 - min(left, 0), y), text, fill=TEXT_COLOUR, font=_font())


@dataclass
class _Header:
    """A full-width text strip (sheet title or moment label)."""

    text: str
    fill: tuple[int, int, int]


@dataclass
class _CellRow:
    """One row of labelled frames."""

    frames: list[np.ndarray]
    labels: list[str]


def _render_sheet(
    blocks: list[_Header | _CellRow], path: Path, columns: int, scale: int
) -> Path:
    """Lay out header strips and rows of labelled frames top to bottom and save a PNG."""
    all_frames = [f for b in blocks if isinstance(b, _CellRow) for f in b.frames]
    if not all_frames:
        raise ValueError("a contact sheet needs at least one frame")
    frame_h = max(f.shape[0] for f in all_frames) * scale
    frame_w = max(f.shape[1] for f in all_frames) * scale
    cell_w, cell_h = frame_w, frame_h + LABEL_HEIGHT

    sheet_w = GAP + columns * (cell_w + GAP)
    sheet_h = GAP + sum(
        (HEADER_HEIGHT if isinstance(b, _Header) else cell_h) + GAP for b in blocks
    )
    sheet = Image.new("RGB", (sheet_w, sheet_h), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    y = GAP
    for block in blocks:
        if isinstance(block, _Header):
            _draw_strip(
                draw, (GAP, y, sheet_w - GAP, y + HEADER_HEIGHT), block.text, block.fill
            )
            y += HEADER_HEIGHT + GAP
            continue
        for i, (frame, label) in enumerate(
            zip(block.frames, block.labels, strict=True)
        ):
            x = GAP + i * (cell_w + GAP)
            tile = Image.fromarray(frame)
            if scale != 1:
                tile = tile.resize(
                    (frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST
                )
            sheet.paste(tile, (x, y))
            _draw_strip(
                draw, (x, y + frame_h, x + cell_w, y + cell_h), label, LABEL_BACKGROUND
            )
        y += cell_h + GAP

    tmp = _reserve_temp(path)
    try:
        sheet.save(tmp, format="PNG")
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_layout_args(columns: int, scale: int) -> None:
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")


def contact_sheet(
    frames: Sequence[np.ndarray],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    columns: int = 8,
    scale: int = 1,
    title: str | None = None,
) -> Path:
    """Save a PNG grid of frames, each with its label (e.g. "step 1234", "life lost") underneath.

    Args:
        frames: RGB frames, each H x W x 3 uint8 (cells are sized to the largest frame).
        labels: one caption per frame; captions too wide for a cell are shortened with '…'.
        path: where to write the PNG. Raises FileExistsError if it exists; parents are created.
        columns: frames per row; the sheet is `min(columns, len(frames))` cells wide.
        scale: integer nearest-neighbour magnification of every frame.
        title: optional text for a strip across the top of the sheet.

    Returns:
        The path of the written PNG. Its size is
        width  = GAP + cols * (W * scale + GAP),
        height = GAP + (HEADER_HEIGHT + GAP if title else 0) + rows * (H * scale + LABEL_HEIGHT + GAP)
        with cols = min(columns, len(frames)) and rows = ceil(len(frames) / cols).
    """
    _check_layout_args(columns, scale)
    if len(frames) != len(labels):
        raise ValueError(f"got {len(frames)} frames but {len(labels)} labels")
    if len(frames) == 0:
        raise ValueError("contact_sheet needs at least one frame")
    path = Path(path)
    _refuse_existing(path)
    rgb = [_as_rgb_frame(f) for f in frames]
    cols = min(columns, len(rgb))

    blocks: list[_Header | _CellRow] = []
    if title is not None:
        blocks.append(_Header(title, TITLE_BACKGROUND))
    for start in range(0, len(rgb), cols):
        blocks.append(
            _CellRow(
                rgb[start : start + cols],
                [str(s) for s in labels[start : start + cols]],
            )
        )
    return _render_sheet(blocks, path, cols, scale)


def sheet_for_moments(
    moments: list[dict],
    path: str | os.PathLike[str],
    columns: int = 8,
    title: str | None = None,
    scale: int = 1,
) -> Path:
    """Save one PNG showing several moments of an episode, one labelled block of frames per moment.

    Typical use: the 16 frames before each life lost, one moment per life.

    Args:
        moments: list of dicts, each with
            "label": str, shown in a strip above the moment's frames (e.g. "life lost at step 812");
            "steps": list[int], the env step of each frame, shown under it as "step N";
            "frames": K x H x W x 3 uint8 array (or list of frames), K == len(steps).
            A moment with more than `columns` frames wraps onto several rows; one with no
            frames shows only its label.
        path: where to write the PNG. Raises FileExistsError if it exists; parents are created.
        columns: frames per row; the sheet is min(columns, largest K) cells wide.
        title: optional text for a strip across the top of the sheet.
        scale: integer nearest-neighbour magnification of every frame.

    Returns:
        The path of the written PNG. Its height is
        GAP + (HEADER_HEIGHT + GAP if title else 0)
        + sum over moments of (HEADER_HEIGHT + GAP + ceil(K / cols) * (H * scale + LABEL_HEIGHT + GAP)).
    """
    _check_layout_args(columns, scale)
    if not moments:
        raise ValueError("sheet_for_moments needs at least one moment")
    path = Path(path)
    _refuse_existing(path)

    parsed: list[tuple[str, list[int], list[np.ndarray]]] = []
    for n, moment in enumerate(moments):
        missing = {"label", "steps", "frames"} - set(moment)
        if missing:
            raise ValueError(f"moment {n} is missing {sorted(missing)}")
        steps = [int(s) for s in moment["steps"]]
        frames = [_as_rgb_frame(f) for f in moment["frames"]]
        if len(steps) != len(frames):
            raise ValueError(
                f"moment {n} ({moment['label']!r}) has {len(frames)} frames but {len(steps)} steps"
            )
        parsed.append((str(moment["label"]), steps, frames))

    widest = max(len(frames) for _, _, frames in parsed)
    if widest == 0:
        raise ValueError("sheet_for_moments needs at least one frame")
    cols = min(columns, widest)

    blocks: list[_Header | _CellRow] = []
    if title is not None:
        blocks.append(_Header(title, TITLE_BACKGROUND))
    for label, steps, frames in parsed:
        blocks.append(_Header(label, MOMENT_BACKGROUND))
        for start in range(0, len(frames), cols):
            blocks.append(
                _CellRow(
                    frames[start : start + cols],
                    [f"step {s}" for s in steps[start : start + cols]],
                )
            )
    return _render_sheet(blocks, path, cols, scale)


__all__ = [
    "GAP",
    "HEADER_HEIGHT",
    "LABEL_HEIGHT",
    "Mp4Writer",
    "contact_sheet",
    "iter_mp4_frames",
    "read_mp4",
    "sheet_for_moments",
    "write_mp4",
]
