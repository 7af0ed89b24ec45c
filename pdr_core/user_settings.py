"""The settings a person saves for new app sessions: the endpoint's URL and model, whether to
use the bundled model, the Run page's slider defaults and mixture of agents' proposers.
Never the API key.

They live in `settings.json` under the user's config folder: $XDG_CONFIG_HOME/pdr-inspector,
else ~/.config/pdr-inspector.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pdr_core.providers.routes import parse_routes

APP_FOLDER = "pdr-inspector"
# The Run page sliders whose defaults can be saved, with their allowed range.
DEFAULT_RANGES = {"width": (1, 16), "depth": (1, 8), "max_tokens": (64, 32768)}


class SettingsFileError(ValueError):
    """The settings file cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class UserSettings:
    local: bool = True
    base_url: str | None = None
    model: str | None = None
    defaults: dict[str, int] = field(default_factory=dict)
    local_model: str | None = None  # a GGUF file for the local model; None: the bundled one
    # Mixture of agents' proposers (MODEL@URL or MODEL, comma-separated): the Run page's
    # default for moa. Routes only; a key never goes with them.
    proposers: str | None = None


def settings_path() -> Path:
    """Where the settings file lives (it may not exist)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_FOLDER / "settings.json"


def _text(data: dict, name: str, path: Path) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise SettingsFileError(f"{path}: {name!r} must be a string or null")
    return value or None


def _defaults(data: dict, path: Path) -> dict[str, int]:
    given = data.get("defaults") or {}
    if not isinstance(given, dict):
        raise SettingsFileError(f"{path}: 'defaults' must be an object")
    defaults = {}
    for name, value in given.items():
        if name not in DEFAULT_RANGES:
            raise SettingsFileError(f"{path}: unknown default {name!r}; known: "
                                    + ", ".join(DEFAULT_RANGES))
        low, high = DEFAULT_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsFileError(f"{path}: default {name!r} must be a whole number from "
                                    f"{low} to {high}, not {value!r}")
        defaults[name] = value
    return defaults


def load_settings(path: Path | None = None) -> UserSettings | None:
    """The saved settings, or None when nothing was saved."""
    path = path or settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsFileError(f"{path} is not readable JSON ({exc}); fix or delete it") \
            from exc
    if not isinstance(data, dict):
        raise SettingsFileError(f"{path} must hold a JSON object")
    local = data.get("local", True)
    if not isinstance(local, bool):
        raise SettingsFileError(f"{path}: 'local' must be true or false")
    return UserSettings(local=local, base_url=_text(data, "base_url", path),
                        model=_text(data, "model", path), defaults=_defaults(data, path),
                        local_model=_text(data, "local_model", path),
                        proposers=_proposers(data, path))


def _proposers(data: dict, path: Path) -> str | None:
    text = _text(data, "proposers", path)
    if text is not None:
        try:
            parse_routes(text)
        except ValueError as exc:
            raise SettingsFileError(f"{path}: 'proposers': {exc}") from None
    return text


def save_settings(settings: UserSettings, path: Path | None = None) -> Path:
    """Write `settings` (whole file at once, so a crash never leaves half a file)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(settings), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
