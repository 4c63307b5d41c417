from __future__ import annotations

from pathlib import Path

import pytest

from streams.domain.events import CUSTOMER_REF_PATTERN
from streams.domain.pseudonym import normalise_identity, pseudonymise
from streams.settings import load_settings

pytestmark = pytest.mark.unit


def test_pseudonym_is_stable_keyed_and_formatted() -> None:
    a = pseudonymise("+7 (912) 000-00-00", b"k1")
    assert a == pseudonymise("79120000000", b"k1")
    assert a != pseudonymise("79120000000", b"k2")
    assert CUSTOMER_REF_PATTERN.match(a)
    assert "9120000000" not in a


def test_email_normalised_case_insensitively() -> None:
    assert normalise_identity(" Ivan@Example.RU ") == "ivan@example.ru"


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="CCPULSE_PSEUDONYM_KEY"):
        pseudonymise("79120000000", b"")


def test_secret_from_file_wins_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cr3t-from-file\n")
    settings = load_settings({"CCPULSE_PSEUDONYM_KEY": "from-env", "CCPULSE_PSEUDONYM_KEY_FILE": str(secret)})
    assert settings.pseudonym_key is not None
    assert settings.pseudonym_key.get_secret_value() == "s3cr3t-from-file"
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings)


def test_unreadable_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CCPULSE_PSEUDONYM_KEY_FILE"):
        load_settings({"CCPULSE_PSEUDONYM_KEY_FILE": str(tmp_path / "missing")})


def test_invalid_broker_choice_is_rejected() -> None:
    with pytest.raises(ValueError, match="broker"):
        load_settings({"CCPULSE_BROKER": "rabbitmq"})


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError):
        settings.broker = "tansu"  # type: ignore[misc]
