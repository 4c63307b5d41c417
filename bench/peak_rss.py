"""Peak RSS of this process in KiB, for the benchmark's child processes.

``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``execve`` on Linux: a child started by the
benchmark (which holds the simulator's data) reports at least the parent's peak at fork
time (checked: a child of a 300 MB parent reports 313 MB, its own peak is 14 MB). The
kernel's VmHWM belongs to the new address space, so it is the child's own peak.
"""

from __future__ import annotations

import resource


def peak_rss_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: may include the parent's
