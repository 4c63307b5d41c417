"""The one error type for bad input: carries a machine-readable reason and a message."""

from __future__ import annotations

# Reason codes of domain validation (the codec adds its own decoding reasons).
OUT_OF_RANGE = "out_of_range"
UNKNOWN_REGION = "unknown_region"
NOT_PSEUDONYMISED = "not_pseudonymised"
INCONSISTENT = "inconsistent"


class InvalidEvent(ValueError):
    """Input that cannot become a domain event. Routed to the dead-letter topic.

    ``reason`` is a short stable code (used as a Kafka header and a metric label);
    ``detail`` names the offending value and what was expected.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
