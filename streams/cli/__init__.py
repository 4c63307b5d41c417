"""Every entry point: `ccpulse` (main.py) and its commands, the demo, the contract demo, simulate."""
