"""A ``PartitionState`` whose tables live in Quix Streams' keyed RocksDB state, for one message.

``streams.jobs.kpi_apply.apply_contact / apply_survey / apply_agent`` work on a
``PartitionState`` (plain dicts). The Quix KPI job (bench/quix_kpi_job.py) reuses
them unchanged by giving them a ``PartitionState`` whose dict fields are
``StateTable`` views over the ``quixstreams.State`` of the current message key
(the region). A view reads through to the store on first access and hands out the
decoded value; values read or assigned while processing one message are kept in
one unit of work and written back with ``State.set`` when the message is done,
because ``kpi.py`` mutates buckets in place (``bucket[name] += value``), which a
store that serialises on ``set`` would not see. Quix's own transaction then puts
the writes in RocksDB and the changelog at its checkpoint.

Watermarks and the late counters sit in one small ``meta`` record per key, read
at the start of a message and written at its end with a per-key message count
(the snapshot version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from streams.jobs.state import (
    PartitionState,
    _agent_from_list,
    _agent_to_list,
    _progress_from_list,
    _progress_to_list,
)

_MISSING = object()
_DELETED = object()
Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]  # (to JSON-able, from JSON-able)
_PLAIN: Codec = (lambda v: v, lambda v: v)


def _key_text(key: Any) -> str:
    return "|".join(map(str, key)) if isinstance(key, tuple) else str(key)


class UnitOfWork:
    """What one message read and wrote; ``commit`` writes the changed values back to the State."""

    __slots__ = ("state", "values", "codecs")

    def __init__(self) -> None:
        self.state: Any = None
        self.values: dict[str, Any] = {}
        self.codecs: dict[str, Callable[[Any], Any]] = {}

    def begin(self, state: Any) -> None:
        self.state = state
        self.values.clear()
        self.codecs.clear()

    def commit(self) -> None:
        state, encoders = self.state, self.codecs
        for key, encode in encoders.items():
            value = self.values[key]
            if value is _DELETED:
                state.delete(key)
            else:
                state.set(key, encode(value))


class StateTable:
    """The dict interface ``streams/jobs/kpi_apply.py`` uses, over keys ``<name>:<key>`` in the State."""

    __slots__ = ("_name", "_uow", "_encode", "_decode")

    def __init__(self, name: str, uow: UnitOfWork, codec: Codec = _PLAIN) -> None:
        self._name, self._uow = name + ":", uow
        self._encode, self._decode = codec

    def _read(self, key: Any) -> tuple[str, Any]:
        full = self._name + _key_text(key)
        values = self._uow.values
        value = values.get(full, _MISSING)
        if value is _MISSING:
            stored = self._uow.state.get(full)
            value = _DELETED if stored is None else self._decode(stored)
            values[full] = value
        return full, value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._read(key)[1]
        return default if value is _DELETED else value

    def __getitem__(self, key: Any) -> Any:
        value = self._read(key)[1]
        if value is _DELETED:
            raise KeyError(key)
        self._uow.codecs[self._name + _key_text(key)] = self._encode  # may be mutated in place
        return value

    def __contains__(self, key: Any) -> bool:
        return self._read(key)[1] is not _DELETED

    def __setitem__(self, key: Any, value: Any) -> None:
        full = self._name + _key_text(key)
        self._uow.values[full] = value
        self._uow.codecs[full] = self._encode

    def pop(self, key: Any, default: Any = None) -> Any:
        full, value = self._read(key)
        if value is _DELETED:
            return default
        self._uow.values[full] = _DELETED
        self._uow.codecs[full] = self._encode
        return value

    def touch(self, key: Any) -> Any:
        """``get`` for a value the caller mutates in place (buckets): written back at commit."""
        full, value = self._read(key)
        if value is not _DELETED:
            self._uow.codecs[full] = self._encode
            return value
        return None

    def __iter__(self) -> Iterator[Any]:  # eviction would iterate: not available on keyed State
        msg = f"iterating {self._name!r} is not supported over a keyed Quix State"
        raise NotImplementedError(msg)


class BucketTable(StateTable):
    """Counter buckets (minutes, days, totals, agent minutes): ``get`` marks them for write-back,
    as ``kpi._accumulate`` and ``kpi.apply_agent`` add to the dict they get."""

    __slots__ = ()

    def get(self, key: Any, default: Any = None) -> Any:
        value = self.touch(key)
        return default if value is None else value


_WAITING: Codec = (list, tuple)
_QUEUES: Codec = (list, tuple)


def region_view(uow: UnitOfWork) -> PartitionState:
    """One reusable ``PartitionState`` whose tables read and write ``uow``'s current State."""
    view = PartitionState(partition=-1)
    view.progress = StateTable("p", uow, (_progress_to_list, _progress_from_list))  # type: ignore[assignment]
    view.last_seen_ms = StateTable("ls", uow)  # type: ignore[assignment]
    view.waiting = StateTable("w", uow, _WAITING)  # type: ignore[assignment]
    view.surveys_seen = StateTable("s", uow)  # type: ignore[assignment]
    view.minutes = BucketTable("m", uow)  # type: ignore[assignment]
    view.days = BucketTable("d", uow)  # type: ignore[assignment]
    view.totals = BucketTable("t", uow)  # type: ignore[assignment]
    view.agents = StateTable("a", uow, (_agent_to_list, _agent_from_list))  # type: ignore[assignment]
    view.agent_load = StateTable("al", uow)  # type: ignore[assignment]
    view.agent_minutes = BucketTable("am", uow)  # type: ignore[assignment]
    view.queues = StateTable("q", uow, _QUEUES)  # type: ignore[assignment]
    return view


def load_meta(view: PartitionState, state: Any) -> int:
    """Watermarks and late counters of the key into ``view``; returns the key's message count."""
    meta = state.get("meta")
    if meta is None:
        view.watermarks, view.late_events, view.late_surveys = {}, 0, 0
        return 0
    view.watermarks, view.late_events, view.late_surveys = meta["wm"], meta["late"], meta["late_s"]
    return int(meta["seq"])


def store_meta(view: PartitionState, state: Any, seq: int) -> None:
    state.set("meta", {"wm": view.watermarks, "late": view.late_events, "late_s": view.late_surveys,
                       "seq": seq})  # fmt: skip
