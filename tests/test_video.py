"""Tests for record/video.py: mp4 round trips, no-overwrite rules and contact sheet layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from record import video
from record.video import (
    GAP,
    HEADER_HEIGHT,
    LABEL_HEIGHT,
    Mp4Writer,
    contact_sheet,
    iter_mp4_frames,
    read_mp4,
    sheet_for_moments,
    write_mp4,
)

H, W = 210, 160
BACKGROUND = (20, 40, 200)
SQUARE = (230, 200, 30)
SQUARE_SIZE = 32


def make_frame(i: int, height: int = H, width: int = W) -> np.ndarray:
    """A blue frame with a yellow square that moves down-right by 3 pixels per frame."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    y = (10 + 3 * i) % (height - SQUARE_SIZE)
    x = (10 + 3 * i) % (width - SQUARE_SIZE)
    frame[y : y + SQUARE_SIZE, x : x + SQUARE_SIZE] = SQUARE
    return frame


def frames(n: int, height: int = H, width: int = W):
    """A generator, so the writer is exercised on a stream rather than a list."""
    for i in range(n):
        yield make_frame(i, height, width)


def leftovers(folder) -> list[str]:
    """Temp files the writers may have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# ---------------------------------------------------------------------------------- mp4


def test_round_trip_exact_count_and_size(tmp_path):
    path = tmp_path / "episode.mp4"
    written = write_mp4(frames(37), path, fps=60)
    assert written == 37
    assert path.is_file() and path.stat().st_size > 0
    assert read_mp4(path) == (37, (H, W))
    assert leftovers(tmp_path) == []


def test_first_frame_colours_survive_encoding(tmp_path):
    path = tmp_path / "colours.mp4"
    write_mp4(frames(5), path)
    first = next(iter_mp4_frames(path))
    assert first.shape == (H, W, 3) and first.dtype == np.uint8

    # Compare region means away from edges (H.264 and 4:2:0 chroma blur the borders).
    inside_square = first[14:38, 14:38].reshape(-1, 3).mean(axis=0)
    background = first[150:200, 100:150].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(inside_square, SQUARE, atol=12)
    np.testing.assert_allclose(background, BACKGROUND, atol=12)


def test_decoded_frames_differ_where_the_square_moved(tmp_path):
    path = tmp_path / "moving.mp4"
    write_mp4(frames(20), path)
    decoded = list(iter_mp4_frames(path))
    assert len(decoded) == 20
    # Frame 19 has its square at (67, 67); frame 0 there is background.
    patch0 = decoded[0][71:95, 71:95].reshape(-1, 3).mean(axis=0)
    patch19 = decoded[19][71:95, 71:95].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(patch0, BACKGROUND, atol=12)
    np.testing.assert_allclose(patch19, SQUARE, atol=12)


def test_writer_context_manager_and_temp_file(tmp_path):
    path = tmp_path / "nested" / "dirs" / "run.mp4"
    with Mp4Writer(path, fps=30) as writer:
        for i in range(4):
            writer.append(make_frame(i))
        # While writing, only a hidden temp file exists; never the final name.
        assert not path.exists()
        assert len(leftovers(path.parent)) == 1
    assert writer.frames_written == 4
    assert writer.closed
    assert path.is_file()
    assert leftovers(path.parent) == []
    assert read_mp4(path) == (4, (H, W))


def test_refuses_to_overwrite_existing_video(tmp_path):
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        Mp4Writer(path)
    with pytest.raises(FileExistsError):
        write_mp4(frames(3), path)
    assert path.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_file_appearing_during_write_is_not_clobbered(tmp_path):
    path = tmp_path / "race.mp4"
    writer = Mp4Writer(path)
    writer.append(make_frame(0))
    path.write_bytes(b"someone else")
    with pytest.raises(FileExistsError):
        writer.close()
    assert path.read_bytes() == b"someone else"
    assert leftovers(tmp_path) == []


def test_error_inside_with_block_leaves_nothing(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"), Mp4Writer(path) as writer:
        writer.append(make_frame(0))
        raise RuntimeError("boom")
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_no_frames_writes_nothing(tmp_path):
    path = tmp_path / "empty.mp4"
    with pytest.raises(ValueError, match="no frames"):
        write_mp4([], path)
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_mismatched_or_bad_frames_are_rejected(tmp_path):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="size"), Mp4Writer(path) as writer:
        writer.append(make_frame(0))
        writer.append(make_frame(1, height=100, width=100))
    with pytest.raises(TypeError, match="uint8"), Mp4Writer(path) as writer:
        writer.append(make_frame(0).astype(np.float32))
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_odd_frame_size_is_padded_not_rejected(tmp_path):
    path = tmp_path / "odd.mp4"
    assert write_mp4(frames(6, height=45, width=61), path) == 6
    assert read_mp4(path) == (6, (46, 62))


def test_grey_frames_are_accepted(tmp_path):
    path = tmp_path / "grey.mp4"
    grey = [np.full((H, W), 128, dtype=np.uint8) for _ in range(3)]
    assert write_mp4(grey, path) == 3
    assert read_mp4(path) == (3, (H, W))


# ---------------------------------------------------------------------------------- sheets


def strip_is_not_uniform(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> bool:
    """True if text (or anything) was drawn in this box: it has more than one colour."""
    region = image[y0:y1, x0:x1].reshape(-1, 3)
    return len(np.unique(region, axis=0)) > 1


def test_contact_sheet_grid_size_and_labels(tmp_path):
    n, columns, scale = 11, 4, 2
    path = tmp_path / "sheets" / "grid.png"
    shots = [make_frame(i) for i in range(n)]
    labels = [f"step {100 * i}" for i in range(n)]
    labels[5] = "life lost"

    assert (
        contact_sheet(
            shots, labels, path, columns=columns, scale=scale, title="Breakout seed 0"
        )
        == path
    )

    rows = math.ceil(n / columns)
    cell_w, cell_h = W * scale, H * scale + LABEL_HEIGHT
    expected_w = GAP + columns * (cell_w + GAP)
    expected_h = GAP + HEADER_HEIGHT + GAP + rows * (cell_h + GAP)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (expected_w, expected_h)
        sheet = np.asarray(img.convert("RGB"))
    assert leftovers(path.parent) == []

    top = GAP + HEADER_HEIGHT + GAP
    # The title strip has text in it.
    assert strip_is_not_uniform(sheet, GAP, GAP + HEADER_HEIGHT, GAP, expected_w - GAP)
    # Every frame's caption strip has text in it; the empty 12th cell does not.
    for i in range(rows * columns):
        r, c = divmod(i, columns)
        x = GAP + c * (cell_w + GAP)
        y = top + r * (cell_h + GAP) + H * scale
        assert strip_is_not_uniform(sheet, y, y + LABEL_HEIGHT, x, x + cell_w) == (
            i < n
        )
    # Frame 0 is pasted at the top-left cell, scaled 2x: its square starts at (10, 10) -> (20, 20).
    np.testing.assert_array_equal(sheet[top + 20, GAP + 20], SQUARE)
    np.testing.assert_array_equal(sheet[top, GAP], BACKGROUND)


def test_contact_sheet_without_title_and_few_frames(tmp_path):
    path = tmp_path / "small.png"
    contact_sheet([make_frame(0), make_frame(1)], ["a", "b"], path, columns=8)
    with Image.open(path) as img:
        # Two frames with 8 columns: the sheet is only two cells wide.
        assert img.size == (GAP + 2 * (W + GAP), GAP + (H + LABEL_HEIGHT + GAP))


def test_contact_sheet_refuses_overwrite_and_bad_input(tmp_path):
    path = tmp_path / "exists.png"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        contact_sheet([make_frame(0)], ["x"], path)
    assert path.read_bytes() == b"old"
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([make_frame(0)], ["x", "y"], tmp_path / "new.png")
    assert not (tmp_path / "new.png").exists()
    assert leftovers(tmp_path) == []


def test_long_labels_are_shortened_to_fit(tmp_path):
    path = tmp_path / "long.png"
    tiny = np.zeros((20, 30, 3), dtype=np.uint8)
    contact_sheet(
        [tiny, tiny], ["a very long label that cannot fit", "b"], path, columns=2
    )
    with Image.open(path) as img:
        sheet = np.asarray(img.convert("RGB"))
    # Text from the first caption must not spill into the gap or the second cell.
    first_label = sheet[GAP + 20 : GAP + 20 + LABEL_HEIGHT]
    gap_column = first_label[:, GAP + 30 : GAP + 30 + GAP]
    assert (gap_column == video.SHEET_BACKGROUND).all()


def test_sheet_for_moments_rows(tmp_path):
    columns, k = 8, 16
    moments = [
        {
            "label": f"life lost at step {step}",
            "steps": list(range(step - k + 1, step + 1)),
            "frames": np.stack([make_frame(i) for i in range(k)]),
        }
        for step in (812, 2040)
    ]
    path = tmp_path / "moments.png"
    assert sheet_for_moments(moments, path, columns=columns, title="Lives lost") == path

    rows_per_moment = math.ceil(k / columns)  # 16 frames, 8 per row -> 2 rows each
    frame_rows = len(moments) * rows_per_moment
    assert frame_rows == 4
    cell_h = H + LABEL_HEIGHT
    expected_w = GAP + columns * (W + GAP)
    expected_h = (
        GAP + (HEADER_HEIGHT + GAP) * (1 + len(moments)) + frame_rows * (cell_h + GAP)
    )
    with Image.open(path) as img:
        assert img.size == (expected_w, expected_h)
        sheet = np.asarray(img.convert("RGB"))

    # Walk the layout: title, then per moment a label strip and two rows of captioned frames.
    y = GAP + HEADER_HEIGHT + GAP
    for _ in moments:
        assert strip_is_not_uniform(sheet, y, y + HEADER_HEIGHT, GAP, expected_w - GAP)
        np.testing.assert_array_equal(sheet[y + 1, GAP + W], video.MOMENT_BACKGROUND)
        y += HEADER_HEIGHT + GAP
        for _row in range(rows_per_moment):
            for c in range(columns):
                x = GAP + c * (W + GAP)
                assert strip_is_not_uniform(sheet, y + H, y + cell_h, x, x + W)
            y += cell_h + GAP
    assert y == expected_h


def test_sheet_for_moments_validates(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        sheet_for_moments(
            [
                {
                    "label": "x",
                    "steps": [1, 2],
                    "frames": np.zeros((3, 4, 4, 3), np.uint8),
                }
            ],
            tmp_path / "a.png",
        )
    with pytest.raises(ValueError, match="missing"):
        sheet_for_moments([{"label": "x"}], tmp_path / "b.png")
    assert list(tmp_path.iterdir()) == []
