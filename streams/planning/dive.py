"""Diving: an integer cover by following the LP down, optionally re-pricing as it goes.

From the column generation's LP solution: every column's whole part is fixed (its lower
bound raised to floor(x)), every column whose fractional part is >= ``up`` (and at least
the one with the largest) is rounded up and fixed, the LP is re-solved over the residual
demand by dual simplex, and so on until the LP is integral. With ``columns`` > 0 each
step also prices the whole catalogue with the step's duals and brings in that many of
the most negative reduced costs (fix-and-price; twice the time for 0.6 % fewer hours on
16 channels, docs/planning.md), else the dive stays on the generated columns. The LP
stays feasible at every step (the under-coverage slacks), so the dive always ends in an
integer solution; out of time, the rounding of the partly fixed LP. Its cost is an upper
bound only: the bound reported stays the catalogue-wide one computed before.

The column bounds are restored afterwards (the LP is not re-solved: the caller keeps the
column generation's solution for the MIP's column choice).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from streams.planning.incumbent import rounded

if TYPE_CHECKING:
    from streams.planning.master import Master


def dive(
    master: Master, seconds: float, columns: int = 50, up: float = 0.5, keep: int | None = None
) -> np.ndarray:
    """Integer values for every master column (slacks first); when ``seconds`` run out, the
    rounding of streams/planning/rounding.py applied to the partly fixed LP. The master's
    column bounds are restored, its LP is not re-solved."""
    t0 = time.perf_counter()
    h = master.h
    n_slack = master.n_cover
    lower0 = np.asarray(h.getLp().col_lower_).copy()
    upper0 = np.asarray(h.getLp().col_upper_).copy()
    if keep is not None:
        # dive over a small LP: the LP's support and the lowest reduced costs
        sol = h.getSolution()
        x, rc = np.asarray(sol.col_value)[n_slack:], np.asarray(sol.col_dual)[n_slack:]
        chosen = np.zeros(x.size, dtype=bool)
        chosen[x > 1e-6] = True
        chosen[np.argsort(rc)[:keep]] = True
        out = np.flatnonzero(~chosen) + n_slack
        h.changeColsBounds(out.size, out.astype(np.int32), np.zeros(out.size), np.zeros(out.size))
    h.setOptionValue("simplex_strategy", 1)  # dual: raising bounds keeps the basis dual feasible
    while True:
        h.run()
        sol = h.getSolution()
        x = np.asarray(sol.col_value)[n_slack:]
        frac = x - np.floor(x + 1e-6)
        if (frac < 1e-6).all():
            found = np.round(np.asarray(sol.col_value), 6)
            break
        if time.perf_counter() - t0 >= seconds:
            # out of time: the LP rounding of what the dive has fixed so far
            found = rounded(master, np.asarray(sol.col_value))
            break
        duals = np.asarray(sol.row_dual)
        now = np.asarray(h.getLp().col_lower_)[n_slack:]
        lower = np.maximum(now, np.floor(x + 1e-6))
        up_too = frac >= up  # every column this close to the next integer goes up
        up_too[int(np.argmax(frac))] = True  # and at least the closest one
        lower[up_too] = np.ceil(x[up_too] - 1e-6)
        idx = np.flatnonzero(lower > now)
        upper = np.asarray(h.getLp().col_upper_)[n_slack + idx]
        h.changeColsBounds(idx.size, (idx + n_slack).astype(np.int32), lower[idx], upper)
        # one pricing a step, with the duals before this step's fixing (one LP solve a step)
        for k in master.channels if columns else ():
            master.add_most_negative(k, master.price(k, duals), columns)
    h.setOptionValue("simplex_strategy", 4)
    # the column generation's bounds back (columns the dive added keep lower bound 0)
    n0 = lower0.size
    h.changeColsBounds(n0, np.arange(n0, dtype=np.int32), lower0, upper0)
    return found
