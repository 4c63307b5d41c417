"""The digital twin: a discrete-event simulation of the contact centre producing the input contract.

Entry points: ``Simulation`` (iterate raw batches or domain ``records()``), ``run``
(to a file or Kafka, paced). Parameters and their sources: ``config`` and
docs/simulator.md.
"""

from streams.simulator.config import Faults, SimConfig
from streams.simulator.model import HomeRegion, RoutingPolicy, Target
from streams.simulator.output import MalformedValue, SimRecord
from streams.simulator.run import RunSummary, Simulation, run

__all__ = [
    "Faults",
    "HomeRegion",
    "MalformedValue",
    "RoutingPolicy",
    "RunSummary",
    "SimConfig",
    "SimRecord",
    "Simulation",
    "Target",
    "run",
]
