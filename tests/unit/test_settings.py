"""Every setting is a typed field read from PEERLEARN_<NAME>, and docs/configuration.md lists it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from api.settings import DEFAULT_SYNTHETIC_EVAL, Settings

CONFIGURATION = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = CONFIGURATION.read_text()
    missing = [f.name for f in fields(Settings) if f"`PEERLEARN_{f.name.upper()}`" not in text]
    assert missing == []


def test_settings_once_hidden_in_extra_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "PEERLEARN_MIGRATE": "false",
            "PEERLEARN_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "PEERLEARN_WS_SEND_TIMEOUT_SECONDS": "2.5",
            "PEERLEARN_ROOM_REVOCATION_CHECK_SECONDS": "0.1",
            "PEERLEARN_RECORDING_RETENTION": "0",
            "PEERLEARN_RECORDING_MIN_FREE_BYTES": "1024",
            "PEERLEARN_RECSYS_PARAMS": '{"factors": 8}',
            "PEERLEARN_RECSYS_SYNTHETIC_EVAL": "{}",
            "PEERLEARN_RECSYS_EVAL_MAX_USERS": "0",
        }
    )
    assert s.migrate is False and s.recording_retention is False
    assert s.allowed_origins == "https://a.example, https://b.example"
    assert (s.ws_send_timeout_seconds, s.room_revocation_check_seconds) == (2.5, 0.1)
    assert s.recording_min_free_bytes == 1024 and s.recsys_eval_max_users == 0
    assert s.recsys_params == {"factors": 8} and s.recsys_synthetic_eval == {}


def test_defaults_are_the_old_ones() -> None:
    s = Settings.from_env({})
    assert s.migrate and s.recording_retention
    assert (s.ws_heartbeat_seconds, s.ws_ping_seconds, s.ws_send_timeout_seconds) == (30.0, 25.0, 10.0)
    assert s.recording_min_free_bytes == 64 * 1024 * 1024
    assert s.recsys_synthetic_eval == DEFAULT_SYNTHETIC_EVAL
    assert s.recsys_synthetic_eval is not DEFAULT_SYNTHETIC_EVAL  # each Settings has its own copy


def test_a_dict_setting_must_be_a_json_object() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"PEERLEARN_RECSYS_PARAMS": "[1, 2]"})
