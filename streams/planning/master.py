"""The restricted master problem of the column generation: the catalogue's coverage matrix,
the solver limits, and the HiGHS LP over the columns generated so far (duals for pricing,
warm starts). schedule.py drives it; dive.py and incumbent.py work on its columns.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import csr_matrix

from streams.planning.catalogue import SLOTS_PER_WEEK, Catalogue
from streams.planning.improve import SlotIndex


@dataclass(frozen=True, slots=True)
class Limits:
    max_per_variant: int = 50
    min_part_time_share: float = 0.0
    headcount_cap: int | None = None
    under_penalty: float = 100.0  # paid hours one agent-slot of under-coverage costs
    columns_per_round: int = 150
    max_rounds: int = 80
    pricing_budget_s: float = 20.0  # column generation stops here; the bound stays valid (Lagrangian)
    smoothing: float = 0.5  # Wentges smoothing of the pricing duals (streams/planning/colgen.py); 0: off
    two_point: bool = True  # with smoothing, price the master's own duals too every round
    mip_gap: float = 0.01
    mip_time_limit_s: float = 20.0
    mip_columns: int = 600  # columns the MIP keeps: those the LP uses, then the lowest reduced costs
    dive_s: float = 10.0  # fix-and-price diving after the column generation (streams/planning/dive.py)
    dive_columns: int = 0  # priced in at each step of the dive (0: dive over the generated columns)
    dive_keep: int | None = None  # dive over the LP's support and this many lowest reduced costs
    local_search_s: float = 2.0  # drop / swap / merge over the whole catalogue (one channel alone)
    ruin: int = 3  # > 0: iterated local search (ruin and recreate), agents of one slot removed a step
    seed: int = 0  # the ruin-and-recreate's random slots (streams/planning/polish.py varies it)


class CoverageMatrix:
    """The catalogue's 672 x variants 0/1 coverage, built once and shared by every region."""

    def __init__(self, catalogue: Catalogue) -> None:
        indptr, indices = catalogue.coverage_csc()
        self.indptr, self.indices = indptr, indices
        data = np.ones(indices.size, dtype=np.float64)
        # transposed (variants x slots) in CSR: reduced costs are one sparse product
        self.by_variant = csr_matrix((data, indices, indptr), shape=(catalogue.size, SLOTS_PER_WEEK))
        self.catalogue = catalogue

    def column(self, j: int) -> np.ndarray:
        return self.indices[self.indptr[j] : self.indptr[j + 1]]

    @property
    def slot_index(self) -> SlotIndex:
        """Coverage by slot for the local search, built on first use (about 70 MB)."""
        if getattr(self, "_slot_index", None) is None:
            self._slot_index = SlotIndex(self.indptr, self.indices, SLOTS_PER_WEEK)
        return self._slot_index


_BANNER_SHOWN = [False]


def quiet_highs() -> highspy.Highs:
    """A HiGHS instance with its output off. The first instance of a process prints HiGHS's
    banner on stdout before any option can be set, which put two lines in front of the JSON of
    `ccpulse plan schedule --json` and of the planning benchmark: that one is made with stdout
    pointed at stderr (the C library's buffer flushed before stdout is given back)."""
    if _BANNER_SHOWN[0]:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            h = highspy.Highs()
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN[0] = True
    h.setOptionValue("output_flag", False)
    return h


class Master:
    """The restricted master LP in HiGHS, rows fixed, columns added as they are priced."""

    def __init__(self, demand: dict[str, np.ndarray], limits: Limits, cover: CoverageMatrix) -> None:
        self.h = quiet_highs()
        self.h.setOptionValue("threads", 1)
        # column generation re-solves from the last basis: presolve would throw it away
        self.h.setOptionValue("presolve", "off")
        self.h.setOptionValue("simplex_strategy", 4)  # primal: new columns keep the basis primal feasible
        self.cover, self.limits = cover, limits
        self.channels = list(demand)
        self.row_of: dict[str, np.ndarray] = {}
        lower: list[float] = []
        for k in self.channels:
            rows = np.full(SLOTS_PER_WEEK, -1, dtype=np.int64)
            need = np.flatnonzero(demand[k] > 0)
            rows[need] = np.arange(len(lower), len(lower) + need.size)
            lower.extend(float(v) for v in demand[k][need])
            self.row_of[k] = rows
        self.n_cover = len(lower)
        self.pt_row = self.n_cover
        lower.append(0.0)
        upper = [highspy.kHighsInf] * len(lower)
        self.cap_row = -1
        if limits.headcount_cap is not None:
            self.cap_row = len(lower)
            lower.append(-highspy.kHighsInf)
            upper.append(float(limits.headcount_cap))
        self.lower = np.asarray(lower)
        self.h.addRows(
            len(lower),
            np.asarray(lower),
            np.asarray(upper),
            0,
            np.zeros(1, np.int32),
            np.zeros(0, np.int32),
            np.zeros(0),
        )
        # one under-coverage slack per covered row
        n = self.n_cover
        self.h.addCols(
            n,
            np.full(n, limits.under_penalty),
            np.zeros(n),
            np.full(n, highspy.kHighsInf),
            n,
            np.arange(n, dtype=np.int32),
            np.arange(n, dtype=np.int32),
            np.ones(n),
        )
        self.cost: list[float] = [limits.under_penalty] * n
        self.cols: list[tuple[str, int]] = []
        self.have: dict[str, set[int]] = {k: set() for k in self.channels}

    def add_most_negative(self, k: str, rc: np.ndarray, most: int) -> int:
        """Add channel k's (at most) ``most`` variants of most negative reduced cost ``rc`` that
        the master does not hold yet; the number added."""
        rc = rc.copy()
        if self.have[k]:
            rc[list(self.have[k])] = np.inf
        best = np.argpartition(rc, min(most, rc.size - 1))[:most]
        best = best[rc[best] < -1e-6]
        if best.size:
            self.add(k, best)
        return int(best.size)

    def add(self, k: str, variants: np.ndarray) -> None:
        cat, share = self.cover.catalogue, self.limits.min_part_time_share
        starts: list[int] = []
        index: list[int] = []
        value: list[float] = []
        for j in variants:
            rows = self.row_of[k][self.cover.column(int(j))]
            rows = rows[rows >= 0]
            starts.append(len(index))
            index.extend(rows.tolist())
            value.extend([1.0] * rows.size)
            index.append(self.pt_row)
            value.append(float(cat.part_time[j]) - share)
            if self.cap_row >= 0:
                index.append(self.cap_row)
                value.append(1.0)
            self.cols.append((k, int(j)))
            self.have[k].add(int(j))
        m = len(variants)
        self.cost.extend(cat.paid_hours[variants].astype(float).tolist())
        self.h.addCols(
            m,
            cat.paid_hours[variants].astype(float),
            np.zeros(m),
            np.full(m, float(self.limits.max_per_variant)),
            len(index),
            np.asarray(starts, np.int32),
            np.asarray(index, np.int32),
            np.asarray(value),
        )

    def price(self, k: str, duals: np.ndarray) -> np.ndarray:
        """Reduced cost of every catalogue variant for channel k."""
        cat = self.cover.catalogue
        y = np.zeros(SLOTS_PER_WEEK)
        rows = self.row_of[k]
        y[rows >= 0] = duals[rows[rows >= 0]]
        rc = cat.paid_hours - self.cover.by_variant @ y
        rc -= duals[self.pt_row] * (cat.part_time.astype(float) - self.limits.min_part_time_share)
        if self.cap_row >= 0:
            rc -= duals[self.cap_row]
        return rc
