"""The integer solution handed to the MIP: the LP rounding, the local search over the whole
catalogue, and the columns the MIP keeps (schedule.py's master; one place for what runs
between the column generation and branch and cut)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from streams.planning.catalogue import SLOTS_PER_WEEK
from streams.planning.improve import fill_short, improve_cover, ruin_and_recreate
from streams.planning.rounding import integer_start

if TYPE_CHECKING:
    from streams.planning.master import Master


def rounded(master: Master, lp_values: np.ndarray) -> np.ndarray:
    """A feasible integer start for the MIP (slacks first, as the master's columns)."""
    n_slack = master.n_cover
    rows = []
    for k, j in master.cols:
        r = master.row_of[k][master.cover.column(j)]
        rows.append(r[r >= 0])
    allowed = np.asarray(master.h.getLp().col_upper_)[n_slack:]
    cost = np.asarray(master.cost)[n_slack:]
    return integer_start(lp_values[n_slack:], rows, cost, master.lower[:n_slack], allowed)


def local_search(
    master: Master, incumbent: np.ndarray, seconds: float, ruin: int = 0, seed: int = 0
) -> np.ndarray:
    """The incumbent, its short slots covered (``fill_short``), improved by ``improve_cover``
    over the whole catalogue (one channel);
    variants it brings in become columns of the master, so the MIP can start from it."""
    n_slack = master.n_cover
    (k,) = master.channels
    agents: dict[int, int] = {}
    for (_, j), v in zip(master.cols, incumbent[n_slack:], strict=True):
        if round(v) > 0:
            agents[j] = agents.get(j, 0) + round(v)
    demand = np.zeros(SLOTS_PER_WEEK)
    rows = master.row_of[k]
    demand[rows >= 0] = master.lower[rows[rows >= 0]]
    cost, index = master.cover.catalogue.paid_hours, master.cover.slot_index
    start = fill_short(agents, demand, cost, index)
    if ruin:
        better = ruin_and_recreate(start, demand, cost, index, seconds, remove=ruin, seed=seed)
    else:
        better = improve_cover(start, demand, cost, index, seconds)
    new = np.asarray(sorted(set(better) - master.have[k]), dtype=np.int64)
    if new.size:
        master.add(k, new)
    position = {j: n_slack + i for i, (_, j) in enumerate(master.cols)}
    out = np.zeros(n_slack + len(master.cols))
    covered = np.zeros(SLOTS_PER_WEEK)
    for j, a in better.items():
        out[position[j]] = a
        covered[master.cover.column(j)] += a
    out[rows[rows >= 0]] = np.maximum(demand - covered, 0.0)[rows >= 0]  # the slack left
    return out


def keep_promising(
    master: Master, keep: int, incumbent: np.ndarray, lp_values: np.ndarray, reduced: np.ndarray
) -> None:
    """Fix to 0 every generated column outside the LP's support and the ``keep`` lowest
    reduced costs: branch and cut then works on a few hundred columns, not thousands."""
    n_slack = master.n_cover
    values, reduced = lp_values[n_slack:], reduced[n_slack:]
    chosen = set(np.flatnonzero(values > 1e-6).tolist())
    chosen |= set(np.flatnonzero(incumbent[n_slack:] > 0).tolist())  # the start must stay feasible
    for i in np.argsort(reduced):
        if len(chosen) >= keep:
            break
        chosen.add(int(i))
    drop = np.asarray(sorted(set(range(values.size)) - chosen), dtype=np.int32) + n_slack
    if drop.size:
        zeros = np.zeros(drop.size)
        master.h.changeColsBounds(drop.size, drop, zeros, zeros)
