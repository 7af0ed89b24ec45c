"""Saved settings: the file in the user's config folder, and the app using it (AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pdr_core.user_settings import (
    SettingsFileError,
    UserSettings,
    load_settings,
    save_settings,
    settings_path,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_file_lives_in_the_config_folder_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert settings_path() == tmp_path / "cfg" / "pdr-inspector" / "settings.json"
    assert load_settings() is None  # nothing saved yet
    saved = UserSettings(local=False, base_url="http://127.0.0.1:9/v1", model="m",
                         defaults={"width": 3, "depth": 2, "max_tokens": 256})
    assert save_settings(saved) == settings_path()
    assert load_settings() == saved
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings_path() == tmp_path / "home" / ".config" / "pdr-inspector" / "settings.json"


@pytest.mark.parametrize("text, says", [
    ("{not json", "not readable JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"local": "yes"}', "'local' must be true or false"),
    ('{"base_url": 5}', "'base_url' must be a string"),
    ('{"defaults": {"width": 99}}', "'width' must be a whole number from 1 to 16"),
    ('{"defaults": {"colour": 1}}', "unknown default 'colour'"),
])
def test_a_broken_file_is_refused_with_what_to_fix(tmp_path, text, says):
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(SettingsFileError, match=says):
        load_settings(path)


def test_settings_saved_in_one_session_open_the_next_without_the_key(db, tmp_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    at.switch_page("pages/settings.py").run()
    at.radio(key="endpoint_mode").set_value("OpenAI-compatible endpoint").run()
    at.text_input(key="base_url").input("http://127.0.0.1:9/v1").run()
    at.text_input(key="model_name").input("saved-model").run()
    at.text_input(key="api_key").input("sk-PLANTED-never-saved").run()
    at.slider(key="default_width").set_value(3).run()
    at.button(key="save_settings").click().run()
    assert not at.exception
    assert any("Saved to" in s.value for s in at.success)
    text = settings_path().read_text()
    assert "PLANTED" not in text
    assert json.loads(text)["base_url"] == "http://127.0.0.1:9/v1"

    # a new session starts on the saved endpoint, model and width
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not fresh.exception
    assert fresh.slider(key="width").value == 3
    assert not [i for i in fresh.info if "bundled SmolLM2" in i.value]
    fresh.switch_page("pages/settings.py").run()
    assert fresh.radio(key="endpoint_mode").value == "OpenAI-compatible endpoint"
    assert fresh.text_input(key="base_url").value == "http://127.0.0.1:9/v1"
    assert fresh.text_input(key="model_name").value == "saved-model"
    assert fresh.text_input(key="api_key").value in (None, "")


def test_a_broken_settings_file_is_reported_and_the_app_still_opens(db, tmp_path):
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text("{broken")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert not at.exception
    at.switch_page("pages/settings.py").run()
    assert any("saved settings were not used" in w.value and "not readable JSON" in w.value
               for w in at.warning)
