"""Local search over the whole catalogue: improve an integer cover without losing coverage.

The incumbent (the LP rounding, or the MIP's answer over the generated columns) is a list
of agents, each working one catalogue variant. Three moves, each accepted only when it
lowers the paid hours and every slot stays covered at least as well as before:

- drop: an agent whose every slot has a spare agent goes;
- swap (1 -> 1): an agent goes and the cheapest variant of the *whole catalogue* that covers
  every slot it leaves short comes in, if that is cheaper;
- merge (2 -> 1): two agents go and one cheaper variant covers every slot both leave short.

The catalogue is searched slot by slot (a dense slots x variants boolean matrix: the
variants covering the first short slot, filtered by each further short slot), so one move
costs well under a millisecond. The search stops at a local optimum or at its time limit;
it never adds under-coverage, so the gap reported against the catalogue-wide bound stays
honest whatever it finds.
"""

from __future__ import annotations

import time

import numpy as np

_EPS = 1e-9


class SlotIndex:
    """The catalogue's coverage by slot: ``dense[t, j]`` is True when variant j works slot t."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, slots: int) -> None:
        n = indptr.size - 1
        self.dense = np.zeros((slots, n), dtype=bool)
        self.dense[indices, np.repeat(np.arange(n), np.diff(indptr))] = True
        self.indptr, self.indices = indptr, indices
        self.by_slot = [np.flatnonzero(self.dense[t]) for t in range(slots)]

    def column(self, j: int) -> np.ndarray:
        return self.indices[self.indptr[j] : self.indptr[j + 1]]

    def cheapest_covering(self, short: np.ndarray, cost: np.ndarray, below: float) -> int | None:
        """The cheapest variant costing less than ``below`` that works every slot in ``short``."""
        if short.size == 0:
            return None
        order = short[np.argsort([self.by_slot[t].size for t in short.tolist()])]
        idx = self.by_slot[int(order[0])]
        idx = idx[cost[idx] < below - _EPS]
        for t in order[1:].tolist():
            if idx.size == 0:
                return None
            idx = idx[self.dense[t, idx]]
        if idx.size == 0:
            return None
        return int(idx[np.argmin(cost[idx])])


def fill_short(
    agents: dict[int, int], demand: np.ndarray, cost: np.ndarray, index: SlotIndex
) -> dict[int, int]:
    """``agents`` plus, greedily, the catalogue variants covering the most still-short slots
    per paid hour until every slot of ``demand`` is covered (an unconverged column
    generation can leave slots only the under-coverage slack covers)."""
    x = dict(agents)
    covered = np.zeros(demand.size)
    for j, a in x.items():
        covered[index.column(j)] += a
    short = np.flatnonzero(covered < demand - _EPS)
    while short.size:
        score = index.dense[short].sum(axis=0) / cost
        j = int(np.argmax(score))
        if score[j] <= 0:
            break  # no variant works these slots
        x[j] = x.get(j, 0) + 1
        covered[index.column(j)] += 1
        short = np.flatnonzero(covered < demand - _EPS)
    return x


def improve_cover(
    agents: dict[int, int],
    demand: np.ndarray,
    cost: np.ndarray,
    index: SlotIndex,
    time_limit_s: float = 1.0,
) -> dict[int, int]:
    """Agents per variant, never more expensive than ``agents`` and covering every slot of
    ``demand`` at least as well (slots ``agents`` leaves short stay as short, no shorter)."""
    t0 = time.perf_counter()
    x = {j: a for j, a in agents.items() if a > 0}
    covered = np.zeros(demand.size)
    for j, a in x.items():
        covered[index.column(j)] += a
    target = np.minimum(demand, covered)
    # spare agents per slot; slots nobody needs never bind
    spare = np.where(target > 0, covered - target, np.inf)

    def take(j: int) -> None:
        x[j] -= 1
        if x[j] == 0:
            del x[j]
        spare[index.column(j)] -= 1

    def put(j: int) -> None:
        x[j] = x.get(j, 0) + 1
        spare[index.column(j)] += 1

    improved = True
    while improved and time.perf_counter() - t0 < time_limit_s:
        improved = False
        # drop and swap, the most expensive agents first
        for j in sorted(x, key=lambda v: -cost[v]):
            if j not in x:
                continue
            col = index.column(j)
            short = col[spare[col] < 1]
            if short.size == 0:
                take(j)
                improved = True
                continue
            k = index.cheapest_covering(short, cost, cost[j])
            if k is not None:
                take(j)
                put(k)
                improved = True
        if time.perf_counter() - t0 >= time_limit_s:
            break
        # merge two agents into one cheaper variant
        used = sorted(x, key=lambda v: -cost[v])
        for p, i in enumerate(used):
            if time.perf_counter() - t0 >= time_limit_s:
                break
            for k in used[p:]:
                if i not in x or k not in x or (i == k and x[i] < 2):
                    continue
                ci, ck = index.column(i), index.column(k)
                after = spare.copy()
                after[ci] -= 1
                after[ck] -= 1
                if (after < -1).any():
                    continue  # a slot both cover with no spare: one agent cannot replace them
                short = np.flatnonzero(after < 0)
                m = index.cheapest_covering(short, cost, cost[i] + cost[k])
                if m is None and short.size:
                    continue
                take(i)
                take(k)
                if m is not None:
                    put(m)
                improved = True
    return x


def ruin_and_recreate(
    agents: dict[int, int],
    demand: np.ndarray,
    cost: np.ndarray,
    index: SlotIndex,
    time_limit_s: float = 1.0,
    remove: int = 3,
    seed: int = 0,
    patience: int = 200,
) -> dict[int, int]:
    """Iterated local search from ``improve_cover``'s local optimum: remove up to ``remove``
    agents working one random slot, cover again with ``fill_short``, improve, and keep the
    result when it is cheaper; until ``time_limit_s`` or ``patience`` steps in a row without
    a gain. Never dearer than ``agents``, and every slot ``agents`` covers stays covered."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    covered = np.zeros(demand.size)
    for j, a in agents.items():
        covered[index.column(j)] += a
    need = np.minimum(demand, covered)
    best = improve_cover(agents, need, cost, index, time_limit_s)
    best_cost = sum(float(cost[j]) * a for j, a in best.items())
    slots = np.flatnonzero(need > 0)
    idle = 0
    while slots.size and idle < patience and time.perf_counter() - t0 < time_limit_s:
        idle += 1
        t = int(rng.choice(slots))
        there = [j for j, a in best.items() if index.dense[t, j] for _ in range(a)]
        x = dict(best)
        for i in rng.permutation(len(there))[:remove].tolist():
            x[there[i]] -= 1
            if x[there[i]] == 0:
                del x[there[i]]
        x = fill_short(x, need, cost, index)
        x = improve_cover(x, need, cost, index, max(time_limit_s - (time.perf_counter() - t0), 0.0))
        value = sum(float(cost[j]) * a for j, a in x.items())
        if value < best_cost - _EPS:
            best, best_cost, idle = x, value, 0
    return best
