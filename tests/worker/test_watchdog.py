"""The worker's watchdog: it must not hold a finished stage's exit status back."""

from __future__ import annotations

import socket
import time

from cliprobe.worker.server import Watchdog


def test_a_finished_stage_is_not_kept_waiting_for_the_next_poll() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watchdog = Watchdog(ours)
        watchdog.start()
        time.sleep(0.05)  # inside its select now, with most of a poll left
        stopped = time.monotonic()
        watchdog.stop()
        # the server sends the exit status only after this: the rest of a poll here was
        # added to every stage a worker ran (0.25 s on average)
        assert time.monotonic() - stopped < Watchdog.POLL_S / 2
        assert not watchdog.is_alive()
