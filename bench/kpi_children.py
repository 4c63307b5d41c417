"""The engine benchmark's child processes (bench/bench_kpi.py): run a path's processes at once,
read each one's result line, and the figures of a step (events/s, peak RSS, each process's
events, span and CPU when there are several; a process's CPU seconds from /proc)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any


def _json_line(text: str) -> dict[str, Any]:
    found = [line[line.index('{"events"') :] for line in text.splitlines() if '{"events"' in line]
    if not found:
        msg = f"no result line in: {text[-2000:]}"
        raise RuntimeError(msg)
    return json.loads(found[-1].strip())  # type: ignore[no-any-return, unused-ignore]


_TIMING = ("events", "t_first", "t_last", "max_rss_kb", "events_per_s", "seconds")


def children(commands: list[list[str]], cwd: Path, timeout_s: float = 900) -> dict[str, Any]:
    """Run the commands at once; events/s over the first start to the last end, peak RSS (MB).

    ``cwd``: the run's temporary directory, where Faust leaves its ``<app id>-data`` folders.
    """
    started = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        for c in commands
    ]
    deadline = time.monotonic() + timeout_s
    results = []
    try:
        for child in started:
            out, err = child.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(_json_line(out + err))  # Faust prints through its logger, on stderr
    finally:
        for child in started:  # after a timeout or a failed child: none outlives its step
            if child.poll() is None:
                child.kill()
                child.communicate()
    events = sum(r["events"] for r in results)
    if "events_per_s" in results[0]:  # the Faust baseline times itself
        rate = results[0]["events_per_s"]
    else:
        rate = events / (max(r["t_last"] for r in results) - min(r["t_first"] for r in results))
    return {
        "events": events,
        "events_per_s": rate,
        "processes": len(results),
        "peak_rss_mb": round(max(r["max_rss_kb"] for r in results) / 1024),
        # what else a process reported (the Faust job: batches, where their time went, table writes)
        "detail": [
            {
                **{k: v for k, v in r.items() if k not in _TIMING},
                **(
                    {"events": r["events"], "span_s": round(r["t_last"] - r["t_first"], 2)}
                    if len(results) > 1 and "t_last" in r
                    else {}
                ),
            }
            for r in results
        ],
    }


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system, every thread) a process has used so far; 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
