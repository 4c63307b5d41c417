"""Helpers shared by the test tiers (STYLE.md principle 14)."""
