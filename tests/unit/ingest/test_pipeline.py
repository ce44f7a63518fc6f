"""Reading stdin for ``heat ingest positions --stdin``: every line, and a prompt stop."""

from __future__ import annotations

import io
import os
import threading

from heatmap.ingest.pipeline import StopFlag, interruptible_lines
from support.waiting import wait_until


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stdin-reader"]


def test_every_line_of_a_stream_comes_out_as_read() -> None:
    stream = io.BytesIO(b'{"qty": 1}\n\n{"equity": 2}')  # the last line has no newline
    assert list(interruptible_lines(stream, StopFlag())) == [b'{"qty": 1}\n', b"\n",
                                                             b'{"equity": 2}']


def test_a_stop_ends_reading_an_idle_pipe_after_what_was_read() -> None:
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    try:
        writer.write(b"sent before the stop\n")
        writer.flush()
        stop = StopFlag()
        lines = interruptible_lines(reader, stop, poll_s=0.01)
        assert next(lines) == b"sent before the stop\n"
        stop.event.set()
        assert list(lines) == []  # returns although the writer keeps the pipe open
    finally:
        writer.close()  # end of file for the reader thread, which then ends
        wait_until(lambda: not reader_threads(), timeout_s=10.0, interval_s=0.01,
                   message="the stdin reader thread did not end at end of file")
        reader.close()
