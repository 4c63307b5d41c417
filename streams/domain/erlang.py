"""Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M) performance measures; standard library only.

Conventions: ``a`` is the offered load in erlangs (arrival rate x mean handle time),
``n`` the number of agents (servers), times in seconds. Erlang C follows the textbook
closed forms (FIELD-NOTES): P(wait) = n B / (n - a (1 - B)) with B the Erlang B
blocking probability; SL(t) = 1 - P(wait) exp(-(n - a) t / aht); ASA = P(wait) aht / (n - a).

Erlang A (Palm's M/M/n+M: exponential patience with mean ``patience``) is computed
exactly from the birth-death stationary distribution of the number in system
(truncated where the tail is negligible); its service level follows a tagged
customer through the queue by uniformisation. Used by the simulator (staffing plans),
the KPI engine (staffing gap) and routing (EWT when live data is thin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TAIL_EPSILON = 1e-13
_RESCALE = 1e200


def _check(n: int, a: float) -> None:
    if n < 0:
        msg = f"agents n={n} is negative, expected >= 0"
        raise ValueError(msg)
    if not (math.isfinite(a) and a >= 0):
        msg = f"offered load a={a} erlangs, expected a finite number >= 0"
        raise ValueError(msg)


def erlang_b(n: int, a: float) -> float:
    """Blocking probability of M/M/n/n (recursive form, stable for large n)."""
    _check(n, a)
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """P(wait > 0) in M/M/n; 1.0 when the queue is unstable (n <= a)."""
    _check(n, a)
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1.0 - b))


def service_level_c(n: int, a: float, aht: float, t: float) -> float:
    """Share of contacts answered within ``t`` seconds in M/M/n (Erlang C)."""
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * t / aht)


def asa_c(n: int, a: float, aht: float) -> float:
    """Mean wait of all contacts in M/M/n (infinite when unstable)."""
    if n <= a:
        return math.inf
    return erlang_c(n, a) * aht / (n - a)


def agents_for_service_level(
    a: float, aht: float, t: float, target: float, max_occupancy: float = 1.0
) -> int:
    """Smallest n with Erlang C SL(t) >= target and occupancy a/n <= max_occupancy; 0 for no load."""
    _check(0, a)
    if not 0.0 < target < 1.0:
        msg = f"service level target {target} is outside (0, 1)"
        raise ValueError(msg)
    if a == 0.0:
        return 0
    n = max(1, math.floor(a) + 1, math.ceil(a / max_occupancy))
    b = erlang_b(n, a)
    while True:
        c = n * b / (n - a * (1.0 - b))
        if 1.0 - c * math.exp(-(n - a) * t / aht) >= target:
            return n
        n += 1
        b = a * b / (n + a * b)


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Stationary measures of M/M/n+M for arrival rate, mean handle time and mean patience."""

    p_wait: float  # an arrival finds all agents busy
    p_abandon: float  # an arrival leaves unanswered
    mean_wait: float  # mean time in queue over all arrivals (answered and abandoned), seconds
    mean_queue: float  # mean number waiting
    occupancy: float  # mean busy agents / n


def _stationary(n: int, rate: float, aht: float, patience: float) -> list[float]:
    """Normalised P(k in system) for k = 0.. until the tail is negligible."""
    mu, theta = 1.0 / aht, 1.0 / patience
    weights = [1.0]
    total, k = 1.0, 0
    while True:
        k += 1
        p = weights[-1] * rate / (min(k, n) * mu + max(k - n, 0) * theta)
        weights.append(p)
        total += p
        if total > _RESCALE:
            weights = [w / _RESCALE for w in weights]
            total /= _RESCALE
        if k > n and p < _TAIL_EPSILON * total:
            break
    return [w / total for w in weights]


def erlang_a(n: int, rate: float, aht: float, patience: float) -> ErlangA:
    """M/M/n+M with ``rate`` arrivals per second, exponential patience of mean ``patience`` s."""
    _check(n, rate * aht)
    if n < 1 or rate <= 0 or aht <= 0 or patience <= 0:
        msg = f"erlang_a needs n >= 1 and positive rate/aht/patience, got {n}, {rate}, {aht}, {patience}"
        raise ValueError(msg)
    pi = _stationary(n, rate, aht, patience)
    p_wait = math.fsum(pi[n:])
    mean_queue = math.fsum((k - n) * p for k, p in enumerate(pi) if k > n)
    busy = math.fsum(min(k, n) * p for k, p in enumerate(pi))
    mean_wait = mean_queue / rate  # Little's law over all arrivals
    return ErlangA(p_wait, mean_wait / patience, mean_wait, mean_queue, busy / n)


def service_level_a(n: int, rate: float, aht: float, patience: float, t: float) -> float:
    """P(answered within t) over all arrivals in M/M/n+M (abandons count as not answered).

    An arrival finding k >= n in system waits at position j = k - n + 1; it moves up at
    rate n/aht + (j - 1)/patience and abandons at rate 1/patience. The chain is
    uniformised and the Poisson-weighted step probabilities summed.
    """
    pi = _stationary(n, rate, aht, patience)
    mu, theta = 1.0 / aht, 1.0 / patience
    positions = len(pi) - n
    if positions <= 0:
        return math.fsum(pi)
    uniform = n * mu + positions * theta
    mean_steps = uniform * t
    steps = int(mean_steps + 10.0 * math.sqrt(mean_steps) + 10)
    # served[j]: P(served within m uniformised steps | position j); index 0 = already served
    served = [1.0] + [0.0] * positions
    down = [0.0] + [(n * mu + (j - 1) * theta) / uniform for j in range(1, positions + 1)]
    stay = [0.0] + [1.0 - down[j] - theta / uniform for j in range(1, positions + 1)]
    weight = math.exp(-mean_steps)  # Poisson(0); underflows only for very long t
    answered = [0.0] * (positions + 1)
    for m in range(steps + 1):
        if m:
            weight *= mean_steps / m
            served = [1.0] + [down[j] * served[j - 1] + stay[j] * served[j] for j in range(1, positions + 1)]
        for j in range(1, positions + 1):
            answered[j] += weight * served[j]
    within = math.fsum(pi[:n])
    return within + math.fsum(pi[n + j - 1] * answered[j] for j in range(1, positions + 1))


def agents_for_service_level_a(
    a: float, aht: float, patience: float, t: float, target: float, max_occupancy: float = 1.0
) -> int:
    """Smallest n with Erlang A (M/M/n+M) SL(t) >= target, abandons counting as not answered,
    and mean occupancy <= max_occupancy; 0 for no load. Starts from the Erlang C answer
    (usually an upper bound: patience shortens the queue) and walks to the smallest n."""
    if a == 0.0:
        return 0
    rate = a / aht
    n = agents_for_service_level(a, aht, t, target)

    def meets(m: int) -> bool:
        if m < 1 or service_level_a(m, rate, aht, patience, t) < target:
            return False
        return erlang_a(m, rate, aht, patience).occupancy <= max_occupancy

    while not meets(n):
        n += 1
    while meets(n - 1):
        n -= 1
    return n
