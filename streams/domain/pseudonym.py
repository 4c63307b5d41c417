"""Keyed-hash pseudonyms for subscriber identities (phone numbers, e-mail addresses).

HMAC-SHA256 with a secret key, truncated to 128 bits, hex: stable for one key so
repeat contacts are linkable, irreversible without the key. The raw identity is
normalised first so that "+7 (912) 000-00-00" and "79120000000" map alike.
"""

from __future__ import annotations

import hashlib
import hmac


def normalise_identity(raw: str) -> str:
    value = raw.strip().lower()
    if "@" in value:
        return value
    return "".join(ch for ch in value if ch.isdigit())


def pseudonymise(raw: str, key: bytes) -> str:
    if not key:
        msg = "pseudonymisation key is empty: set CCPULSE_PSEUDONYM_KEY or CCPULSE_PSEUDONYM_KEY_FILE"
        raise ValueError(msg)
    digest = hmac.new(key, normalise_identity(raw).encode(), hashlib.sha256).hexdigest()
    return digest[:32]
