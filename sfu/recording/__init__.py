"""Server-side recording: tap the forwarded RTP, dump it, mux it into WebM without transcoding.

- ``capture``: ``Recorder`` taps a router and writes one crash-safe RTP dump per track
  (``rtp_dump``), in a locked directory (``storage``);
- ``depacketize``: dumped RTP -> VP8 and Opus frames (RTX, reordering, losses);
- ``webm``: one participant's frames on one clock, muxed by PyAV, no codecs;
- ``finalize``: the dumps of a recording -> one WebM per participant and a typed
  ``RecordingResult``.

The composite (grid) export, which must decode and encode, is not here: the engine
holds no codecs (``api/jobs/composite_export.py``).
"""

from .capture import Recorder
from .finalize import RecordedFile, RecordingResult, StreamSummary, finalize
from .storage import META_FILE, RESULT_FILE, RecorderError, capture_in_progress, lock_dir, unlock_dir

__all__ = [
    "META_FILE",
    "RESULT_FILE",
    "RecordedFile",
    "Recorder",
    "RecorderError",
    "RecordingResult",
    "StreamSummary",
    "capture_in_progress",
    "finalize",
    "lock_dir",
    "unlock_dir",
]
