"""One libcurl multi handle driven by the asyncio loop (instead of curl_cffi's ``AsyncCurl``).

libcurl's socket API asks the application to watch sockets
(``CURLMOPT_SOCKETFUNCTION``), to keep one timer for libcurl's next deadline,
and to call ``curl_multi_socket_action`` when either fires. ``AsyncCurl``
does so at a cost paid on every read: each socket call removes the fd's
reader and writer and adds them again; libcurl calls its timer function on
nearly every read of a stream (54 times for 50 chunks: the low-speed check
moves the deadline each time), and each call cancels the loop's timer and
schedules a new one; a task per multi handle calls ``socket_action`` every
0.1 s forever; a future per transfer carries its end. Here:

* the loop's registration of an fd changes only when what libcurl wants of
  it changes;
* no timer callback (``CURLMOPT_TIMERFUNCTION``, a Python call from C per
  read): after each call into libcurl its next deadline is read with
  ``curl_multi_timeout``, a plain C call; libcurl's deadlines change only
  inside those calls, so none is missed;
* the timer is lazy: one wake-up stays scheduled; a later deadline is only
  recorded, and the wake-up, if it comes early, schedules itself again for
  it; only an earlier deadline moves it (4 loop timers for those 54
  deadlines);
* no periodic poll: with the deadline read after every call, there is no
  wake-up to miss;
* a finished transfer's owner is called directly (``transfer_done``) once
  ``socket_action`` has returned.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from curl_cffi import CurlError

from chat2api.upstream import curl

__all__ = ["Multi", "Transfer"]

_POLL_IN = 1  # CURL_POLL_IN; CURL_POLL_OUT is 2 and CURL_POLL_INOUT both
_POLL_OUT = 2
_POLL_REMOVE = 4
_CSELECT_IN = 1
_CSELECT_OUT = 2
_SOCKET_TIMEOUT = -1  # CURL_SOCKET_TIMEOUT
_MSG_DONE = 1  # CURLMSG_DONE
_EARLY = 0.001  # a wake-up this close to the deadline acts (libcurl's unit is the millisecond)


class Transfer(Protocol):
    """What owns an easy handle added to a :class:`Multi`."""

    def transfer_done(self, code: int) -> None:
        """The transfer ended with this CURLcode (0: complete)."""


class Multi:
    """A libcurl multi handle, its sockets on the loop's selector and its one timer."""

    __slots__ = (
        "_callbacks",
        "_due",
        "_fds",
        "_loop",
        "_multi",
        "_out",
        "_queued",
        "_running",
        "_timer",
        "_timer_at",
        "_transfers",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self._loop = loop
        self._multi: Any = curl.multi_init()
        self._transfers: dict[Any, Transfer] = {}  # easy handle -> its owner
        self._fds: dict[int, int] = {}  # fd -> the CURL_POLL_* bits registered for it
        self._timer: asyncio.Handle | None = None  # uvloop's call_at(now) is a plain Handle
        self._timer_at = 0.0  # when _timer fires, in loop time
        self._due: float | None = None  # libcurl's latest deadline, in loop time
        self._running = curl.int_out()  # socket_action's count of running transfers
        self._queued = curl.int_out()  # info_read's count of messages left (unused)
        self._out = curl.long_out()
        self._callbacks = curl.multi_callbacks(self._multi, self._on_socket)
        for option in (curl.MULTI_MAX_TOTAL_CONNECTIONS, curl.MULTI_MAXCONNECTS):
            if curl.multi_setopt_long(self._multi, option, max_connections):
                self.close()
                raise ValueError(f"libcurl refused max_connections={max_connections}")

    # -- transfers

    def add(self, easy: Any, owner: Transfer) -> None:
        """Start the transfer of ``easy`` (a libcurl easy handle); ``owner`` hears its end."""
        code = curl.multi_add_handle(self._multi, easy)
        if code:
            raise CurlError(f"curl_multi_add_handle failed with code {code}")
        self._transfers[easy] = owner
        self._follow_deadline(self._multi)  # "now": the transfer starts on the next turn

    def remove(self, easy: Any) -> None:
        """Stop the transfer of ``easy`` if it runs (its owner is not called)."""
        if self._transfers.pop(easy, None) is not None:
            curl.multi_remove_handle(self._multi, easy)
            self._follow_deadline(self._multi)

    @property
    def watching(self) -> tuple[int, bool]:
        """(sockets watched on the loop, whether a timer is scheduled)."""
        return len(self._fds), self._timer is not None

    def close(self) -> list[Transfer]:
        """Free the multi handle, its sockets and timer; the owners of transfers still running."""
        multi, self._multi = self._multi, None
        owners = list(self._transfers.values())
        if multi is not None:
            for easy in self._transfers:
                curl.multi_remove_handle(multi, easy)
            self._transfers.clear()
            curl.multi_cleanup(multi)  # may still call _on_socket for its cached connections
        for fd, bits in self._fds.items():
            if bits & _POLL_IN:
                self._loop.remove_reader(fd)
            if bits & _POLL_OUT:
                self._loop.remove_writer(fd)
        self._fds.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = None
        return owners

    # -- libcurl's socket callback (called inside curl_multi_* calls)

    def _on_socket(self, easy: Any, fd: int, what: int, clientp: Any, socketp: Any) -> int:
        if what == _POLL_REMOVE:
            what = 0
        old = self._fds.get(fd, 0)
        if what == old:
            return 0
        loop = self._loop
        changed = what ^ old
        if changed & _POLL_IN:
            if what & _POLL_IN:
                loop.add_reader(fd, self._act, fd, _CSELECT_IN)
            else:
                loop.remove_reader(fd)
        if changed & _POLL_OUT:
            if what & _POLL_OUT:
                loop.add_writer(fd, self._act, fd, _CSELECT_OUT)
            else:
                loop.remove_writer(fd)
        if what:
            self._fds[fd] = what
        else:
            del self._fds[fd]
        return 0

    # -- the loop's calls

    def _on_due(self) -> None:
        self._timer = None
        due = self._due
        if due is None or self._multi is None:
            return
        if due > self._loop.time() + _EARLY:  # libcurl moved its deadline later since
            self._timer = self._loop.call_at(due, self._on_due)
            self._timer_at = due
            return
        self._due = None
        self._act(_SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, mask: int) -> None:
        multi = self._multi
        if multi is None:
            return
        curl.multi_socket_action(multi, fd, mask, self._running)
        # A transfer that ended is no longer counted as running: read the
        # messages only then (most actions end none).
        if self._running[0] < len(self._transfers):
            self._read_done(multi)
        self._follow_deadline(multi)

    def _follow_deadline(self, multi: Any) -> None:
        """Keep the one wake-up in step with libcurl's next deadline (after each call into it)."""
        curl.multi_timeout(multi, self._out)
        timeout_ms = self._out[0]
        timer = self._timer
        if timeout_ms < 0:  # no deadline
            self._due = None
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        due = self._loop.time() + timeout_ms * 0.001
        self._due = due
        # libcurl rounds the time left up to the millisecond: an unchanged
        # deadline may read up to 1 ms earlier than it did.
        if timer is None or due < self._timer_at - _EARLY:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(due, self._on_due)
            self._timer_at = due

    def _read_done(self, multi: Any) -> None:
        transfers = self._transfers
        queued = self._queued
        while True:
            message = curl.multi_info_read(multi, queued)
            if message == curl.NULL:
                break
            if message.msg != _MSG_DONE:
                continue
            easy = message.easy_handle
            code = message.data.result
            owner = transfers.pop(easy, None)
            curl.multi_remove_handle(multi, easy)
            if owner is not None:
                owner.transfer_done(code)
