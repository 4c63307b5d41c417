"""A feasible integer cover from the LP solution: round up, then drop what is not needed.

Rounding every fractional column of a covering LP up keeps every row covered; that
incumbent costs the LP value plus up to one column per fractional variable, which in a
small region is a large share. The drop pass then removes agents whose every covered
slot has surplus, most expensive first, until none can go. The result is handed to
HiGHS as its starting incumbent (``Highs.setSolution``), so branch and cut starts from a
solution within a few per cent of the bound instead of searching for one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def round_up_and_drop(
    values: np.ndarray,
    rows: Sequence[np.ndarray],
    cost: np.ndarray,
    demand: np.ndarray,
    upper: float,
) -> np.ndarray:
    """Integer agents per column: ceil(LP values) less every agent the cover can spare.

    ``rows[i]`` are the demand rows column i covers (one each), ``demand`` the rows' right-hand
    sides; under-coverage already in the LP stays (the slack columns are not touched here)."""
    x = np.minimum(np.ceil(values - 1e-6), upper)
    x = np.maximum(x, 0.0)
    covered = np.zeros(demand.size)
    for i in np.flatnonzero(x > 0).tolist():
        covered[rows[i]] += x[i]
    # the LP may leave rows under-covered through its slack: never demand more than it covered
    target = np.minimum(demand, covered)
    surplus = covered - target
    for i in np.argsort(-cost * (x > 0)).tolist():
        if x[i] <= 0:
            continue
        r = rows[i]
        spare = x[i] if r.size == 0 else min(x[i], float(surplus[r].min()))
        if spare >= 1:
            x[i] -= np.floor(spare)
            surplus[r] -= np.floor(spare)
    return x


def floor_and_greedy(
    values: np.ndarray,
    rows: Sequence[np.ndarray],
    cost: np.ndarray,
    demand: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """Integer agents per column: floor(LP values), then the residual covered greedily (the
    column covering most still-short rows per paid hour, one agent at a time), then the drop
    pass of ``round_up_and_drop``. Columns with ``upper`` 0 are never used."""
    from scipy.sparse import csc_matrix

    n = len(rows)
    x = np.minimum(np.floor(values + 1e-6), upper)
    sizes = np.fromiter((r.size for r in rows), dtype=np.int64, count=n)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.concatenate(list(rows)) if n else np.zeros(0, np.int64)
    a = csc_matrix((np.ones(indices.size), indices, indptr), shape=(demand.size, n))
    short = demand - a @ x
    usable = (upper > 0) & (sizes > 0)
    while (short > 1e-9).any():
        score = (a.T @ (short > 1e-9).astype(float)) / cost
        score[~usable | (x >= upper)] = -1.0
        i = int(np.argmax(score))
        if score[i] <= 0:
            break  # nothing generated covers what is left: the slack takes it
        x[i] += 1
        short[rows[i]] -= 1
    return round_up_and_drop(x, rows, cost, np.minimum(demand, a @ x), float(upper.max(initial=0.0)))


def covered_by(rows: Sequence[np.ndarray], x: np.ndarray, size: int) -> np.ndarray:
    covered = np.zeros(size)
    for i in np.flatnonzero(x > 0).tolist():
        covered[rows[i]] += x[i]
    return covered


def integer_start(
    lp: np.ndarray, rows: Sequence[np.ndarray], cost: np.ndarray, demand: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """The cheaper of the two roundings (of those covering as much), with the slack each leaves
    in front: ``[slack per row, agents per column]``."""
    lp = np.minimum(lp, upper)
    best = round_up_and_drop(lp, rows, cost, demand, float(upper.max(initial=0.0)))
    greedy = floor_and_greedy(lp, rows, cost, demand, upper)

    def met(x: np.ndarray) -> float:
        return float(np.minimum(covered_by(rows, x, demand.size), demand).sum())

    if cost @ greedy < cost @ best and met(greedy) >= met(best):
        best = greedy
    slack = np.maximum(demand - covered_by(rows, best, demand.size), 0.0)
    return np.concatenate([slack, best])
