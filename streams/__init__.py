"""ccpulse: real-time analytics and routing for a multi-channel contact centre."""

__version__ = "0.1.0"
