"""Random access to a video's frames for the Timeline (PyAV: its wheel ships FFmpeg, no system ffmpeg).

Frames come back as RGB uint8 arrays scaled to at most `max_width` pixels wide (a scrub step sends one
to the browser, so full HD would only cost time). Stepping forward decodes the next frame; a jump seeks
to the keyframe before it and decodes from there. A small cache keeps the frames seen last.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from diffpose_viz.closing import Closing
from diffpose_viz.errors import DataError

INSTALL_HINT = "reading video needs PyAV: pip install 'diffpose-viz[video]' (or pip install av)"


def _av():
    try:
        import av
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return av


class VideoFrames(Closing):
    """One open video. `len()` is its number of frames (from the container, else counted by demuxing)."""

    def __init__(self, path: str | Path, max_width: int = 640, cache_size: int = 64):
        av = _av()
        self.path = Path(path)
        if not self.path.exists():
            raise DataError("video not found", path=self.path)
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise DataError("not a readable video", path=self.path, expected="a video file", found="an empty file"
                            if self.path.is_file() else "not a regular file")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
            raise DataError(f"cannot be decoded as video ({err})", path=self.path) from None
        if not self._container.streams.video:
            self._container.close()
            raise DataError("holds no video stream", path=self.path, expected="a video stream", found="none")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = int(self._stream.width), int(self._stream.height)
        self.n_frames = int(self._stream.frames or 0) or self._count_frames()
        if self.n_frames == 0 or self.width == 0:
            self._container.close()
            raise DataError("has no frames", path=self.path, expected="at least one decodable frame", found="0")
        scale = min(1.0, max_width / self.width)
        self.out_width = max(2, int(round(self.width * scale / 2)) * 2)
        self.out_height = max(2, int(round(self.height * scale / 2)) * 2)
        self._start = int(self._stream.start_time or 0)
        self._next = 0  # index of the frame the decoder will return next
        self._decoder = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # the dashboard shares one open video between its sessions' threads

    def _count_frames(self) -> int:
        try:
            n = sum(1 for packet in self._container.demux(self._stream) if packet.size)
            self._container.seek(0, stream=self._stream)
        except Exception as err:  # noqa: BLE001 - any FFmpeg failure here means a damaged file
            raise DataError(f"cannot be read to its end ({err})", path=self.path) from None
        return n

    def __len__(self) -> int:
        return self.n_frames

    def _index_of(self, frame) -> int:
        if frame.pts is None or not self.fps:
            return self._next
        return int(round((frame.pts - self._start) * float(self._stream.time_base) * self.fps))

    def _decode_next(self):
        if self._decoder is None:
            self._decoder = self._container.decode(self._stream)
        return next(self._decoder)

    def _seek(self, index: int) -> None:
        target = self._start + int(round(index / self.fps / float(self._stream.time_base))) if self.fps else 0
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._decoder = None

    def frame(self, index: int) -> np.ndarray:
        """RGB uint8 (out_height, out_width, 3) of frame `index` (0-based)."""
        with self._lock:
            return self._frame(int(index))

    def _frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.n_frames:
            raise IndexError(f"{self.path.name}: frame {index} out of range 0..{self.n_frames - 1}")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        if index != self._next:
            self._seek(index)
        try:
            while True:
                frame = self._decode_next()
                got = self._index_of(frame)
                self._next = got + 1
                if got >= index:
                    break
        except StopIteration:
            self._next = self.n_frames
            raise DataError(f"frame {index} could not be decoded (the stream ends early)", path=self.path) from None
        except Exception as err:  # noqa: BLE001 - FFmpeg errors on a damaged stream
            self._next = -1
            raise DataError(f"frame {index} could not be decoded ({err})", path=self.path) from None
        image = frame.to_ndarray(format="rgb24", width=self.out_width, height=self.out_height)
        self._cache[index] = image
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return image

    def close(self) -> None:
        self._container.close()
