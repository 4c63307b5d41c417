"""Waiting on conditions with a deadline, never on fixed sleeps (STYLE.md principle 14).

A fixed sleep guesses how long something takes; on a loaded 2-core machine the guess is
wrong and the test fails (or passes without having seen what it meant to see). A test
instead names the observable condition it needs (a log line, committed offsets, rows in a
table, a query answering), polls it, and on timeout says what it awaited and what it saw
last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    describe: str,
    *,
    seen: Callable[[], object] | None = None,
    interval_s: float = 0.25,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``interval_s`` until it returns a truthy value, and return
    that value. After ``timeout_s`` raise AssertionError naming ``describe`` (what was
    awaited) and what was last seen: ``seen()`` if given, else the last value the condition
    returned. Exceptions of the types in ``retry_on`` count as "not yet" (a broker
    restarting under a metadata request) and are reported as what was last seen."""
    began = time.monotonic()
    while True:
        try:
            last: object = condition()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        waited = time.monotonic() - began
        if waited >= timeout_s:
            try:
                shown = seen() if seen is not None else last
            except Exception as exc:  # the description must not hide the timeout
                shown = f"(could not describe: {exc!r}; condition returned {last!r})"
            msg = f"waited {waited:.1f} s for {describe}; last seen: {shown}"
            raise AssertionError(msg)
        time.sleep(min(interval_s, max(0.0, timeout_s - waited)))
