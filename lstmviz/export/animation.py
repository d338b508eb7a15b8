"""Stepping animations: one frame per timestep, the cursor moving and the future dimmed.

GIF goes through imageio's pillow plugin, MP4 through imageio-ffmpeg (H.264, yuv420p,
even frame sizes). Both are plain functions taking ``progress(i, n)`` and ``should_stop()``
so the app can run them in a worker with a progress bar and a Cancel button; a cancelled
export raises :class:`~lstmviz.export.formats.ExportCancelled` and leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LstmvizError, MissingDependencyError
from ..io.atomic import atomic_open, new_file_mode
from .figure import GridFigure
from .formats import ExportCancelled

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

MAX_FPS = 60.0


def frames(
    grid: GridFigure,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    even: bool = False,
) -> Iterator[np.ndarray]:
    """Yield one ``(H, W, 3)`` uint8 frame per timestep of ``grid``'s layer, in the order
    the layer processes them (last to first for a layer that runs backwards).

    The layout is computed once, so every frame has the same size and panel positions.
    """
    n = grid.T
    order = [int(t) for t in grid.lt.processing_order]
    grid.set_step(order[0])
    grid.start_frames()
    for k, t in enumerate(order):
        if should_stop is not None and should_stop():
            raise ExportCancelled(f"animation cancelled at frame {k} of {n}; nothing was written")
        yield grid.frame(t, even=even)
        if progress is not None:
            progress(k + 1, n)


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not 0 < fps <= MAX_FPS:
        raise LstmvizError(f"frames per second must be in (0, {MAX_FPS:g}]; got {fps:g}")
    return fps


def fit_frame(frame: np.ndarray, size: tuple[int, int] | None, even: bool) -> np.ndarray:
    """``frame`` as ``(H, W, 3)`` uint8, padded with white or cropped to ``size = (H, W)``
    (the first frame's size: a video has one frame size), or to even sizes."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] not in (3, 4) or f.dtype != np.uint8:
        raise LstmvizError(f"animation frames must be (H, W, 3) uint8; got {f.shape} {f.dtype}")
    f = f[:, :, :3]
    if size is None:
        h, w = f.shape[:2]
        size = (h + h % 2, w + w % 2) if even else (h, w)
    if f.shape[:2] == size:
        return np.ascontiguousarray(f)
    out = np.full((*size, 3), 255, np.uint8)
    h, w = min(size[0], f.shape[0]), min(size[1], f.shape[1])
    out[:h, :w] = f[:h, :w]
    return out


def write_gif_frames(
    path: str | os.PathLike[str], frames_: Iterable[np.ndarray], fps: float = 4.0
) -> Path:
    """Write ``(H, W, 3)`` uint8 frames as a looping GIF (atomically). The iterable may raise
    :class:`ExportCancelled` to abandon the file."""
    fps = _check_fps(fps)
    try:
        import imageio.v3 as iio
    except ImportError:
        raise MissingDependencyError("imageio", what="GIF export") from None
    p = Path(path)
    size = None
    # closing(): the plugin's own __enter__ is typed as the base class, without its options
    with (
        atomic_open(p, "wb") as fh,
        contextlib.closing(iio.imopen(fh, "w", extension=".gif", plugin="pillow")) as out,
    ):
        for frame in frames_:
            f = fit_frame(frame, size, even=False)
            size = f.shape[:2]
            out.write(f, duration=round(1000 / fps), loop=0, is_batch=False)
    return p


def write_mp4_frames(
    path: str | os.PathLike[str], frames_: Iterable[np.ndarray], fps: float = 4.0, quality: int = 8
) -> Path:
    """Write ``(H, W, 3)`` uint8 frames as an H.264 MP4 (yuv420p, sizes padded to even),
    atomically. The iterable may raise :class:`ExportCancelled` to abandon the file."""
    fps = _check_fps(fps)
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MissingDependencyError(
            "imageio_ffmpeg", "imageio-ffmpeg", what="MP4 export"
        ) from None
    p = Path(path)
    d = p.parent if str(p.parent) else Path(".")
    if not d.is_dir():
        raise LstmvizError(f"{p}: directory {d} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".mp4", dir=d)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(tmp, new_file_mode(p))
    ok = False
    writer: Any = None
    size = None
    try:
        for frame in frames_:
            f = fit_frame(frame, size, even=True)
            if writer is None:
                size = f.shape[:2]
                writer = imageio_ffmpeg.write_frames(
                    tmp,
                    (size[1], size[0]),
                    fps=fps,
                    codec="libx264",
                    pix_fmt_in="rgb24",
                    pix_fmt_out="yuv420p",
                    quality=quality,
                    macro_block_size=1,
                    ffmpeg_log_level="error",
                    output_params=["-movflags", "+faststart"],
                )
                writer.send(None)
            writer.send(f.tobytes())
        if writer is None:
            raise LstmvizError(f"{p}: no frames to write")
        writer.close()
        writer = None
        os.replace(tmp, p)
        ok = True
    finally:
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):  # ffmpeg may be gone
                writer.close()
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return p


def write_gif(
    path: str | os.PathLike[str],
    grid: GridFigure,
    fps: float = 4.0,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """Write a looping GIF of ``grid`` with one frame per timestep (atomically)."""
    _check_fps(fps)
    return write_gif_frames(path, frames(grid, progress, should_stop), fps)


def write_mp4(
    path: str | os.PathLike[str],
    grid: GridFigure,
    fps: float = 4.0,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    quality: int = 8,
) -> Path:
    """Write an H.264 MP4 of ``grid`` with one frame per timestep (atomically)."""
    _check_fps(fps)
    return write_mp4_frames(path, frames(grid, progress, should_stop, even=True), fps, quality)
