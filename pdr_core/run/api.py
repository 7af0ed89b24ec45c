"""The method API: a method declares its settings and its async function over the engine.

A `Method` is a name, a label, an async `run(ctx) -> answer` over one `RunContext`, and the
`Setting`s it uses. The command line's flags, the Run page's controls and Evaluate's grid are
generated from these declarations. A setting named like a `RunConfig` field is stored there
(the built-ins' settings, so traces keep their shape); any other lives in
`RunConfig.method_settings`, serialised with the run's config.

Third-party methods are found by reference, `package.module:function` (the function is, or
returns, a Method), or through the entry point group `pdr_inspector.methods`; see
docs/METHODS.md. A plugin's runs record its reference as their method, so they resume and
fork wherever that module can be imported.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from importlib.metadata import entry_points
from typing import Any

from pdr_core.config import ADAPTIVE_METHODS, ConfigError, RunConfig, is_method_ref
from pdr_core.run.engine import RunContext

ENTRY_POINT_GROUP = "pdr_inspector.methods"
MethodFn = Callable[[RunContext], Awaitable[str | None]]
# Calls per round a complete run of a configuration makes (a plugin's declared schedule).
ScheduleFn = Callable[[RunConfig], Sequence[int]]
SETTING_TYPES = (int, float, bool, str)
_CONFIG_FIELDS = frozenset(f.name for f in fields(RunConfig) if f.init)


@dataclass(frozen=True)
class Setting:
    """One typed setting: its default, inclusive bounds (numbers) or choices (text), the
    help the flag and the control show, and the flag (default `--name-with-dashes`)."""

    name: str
    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    flag: str = ""
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"setting name {self.name!r} must be a Python identifier")
        if self.type not in SETTING_TYPES:
            raise ValueError(f"setting {self.name}: type must be one of int, float, bool, "
                             f"str, not {self.type!r}")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag or "--" + self.name.replace("_", "-"), *self.aliases)

    @property
    def stored_in_config(self) -> bool:
        """Whether a RunConfig field holds it (else `method_settings` does)."""
        return self.name in _CONFIG_FIELDS

    def allowed(self) -> str:
        if self.type is bool:
            return "true or false"
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.type is str:
            return "text"
        kind = "a whole number" if self.type is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{kind} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{kind} of at least {self.low}"
        return kind if self.high is None else f"{kind} of at most {self.high}"

    def check(self, value: Any) -> Any:
        """`value` when it is of this setting's type and in bounds; else a ConfigError
        naming the setting, the value and what is allowed."""
        if value is None and self.default is None:
            return None
        ok = _typed(self.type, value)
        if ok and self.choices:
            ok = value in self.choices
        if ok and self.type in (int, float):
            ok = ((self.low is None or value >= self.low)
                  and (self.high is None or value <= self.high))
        if not ok:
            raise ConfigError(self.name, value, self.allowed())
        return value

    def parse(self, text: str) -> tuple[Any, ...]:
        """The values `text` names, each checked: comma-separated (`2,3`, `true,false`,
        `shortest,longest`), except free text, which is one value whatever it holds."""
        if self.type is str and not self.choices:
            return (self.check(text),)
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise ConfigError(self.name, text, f"{self.allowed()}, comma-separated")
        return tuple(self.check(_parsed(self.type, self.name, part)) for part in parts)


_TRUTH = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _parsed(kind: type, name: str, text: str) -> Any:
    """`text` as a value of `kind` (ConfigError naming the setting when it is not one)."""
    if kind is bool:
        if text.lower() not in _TRUTH:
            raise ConfigError(name, text, "true or false")
        return _TRUTH[text.lower()]
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(name, text, "a whole number" if kind is int else "a number"
                          ) from None


def _typed(kind: type, value: Any) -> bool:
    if kind is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Method:
    """A method: `run` makes its calls through `ctx.call_round` and returns the answer.

    A method that declares the setting `stop_when_agree` is adaptive: its rounds may stop
    once their answers agree (pdr_core.run.adaptive.converged). `ref`: how a run names a plugin
    method (`module:function`); empty for the built-ins. `schedule`: the calls per round a
    complete run makes, from its (prepared) config, for the budget preview and Evaluate's
    estimates; none declared, the config's (one round of `width` for a plugin)."""

    name: str
    label: str
    run: MethodFn
    settings: tuple[Setting, ...] = ()
    ref: str = ""
    schedule: ScheduleFn | None = None

    def __post_init__(self) -> None:
        if not callable(self.run):
            raise ValueError(f"method {self.name}: run must be an async function")
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"method {self.name}: a setting is declared twice in {names}")

    @property
    def key(self) -> str:
        """What a RunConfig's `method` holds for this method."""
        return self.ref or self.name

    def uses(self, name: str) -> bool:
        return any(s.name == name for s in self.settings)

    @property
    def adaptive(self) -> bool:
        return self.uses("stop_when_agree")

    def planned(self, config: RunConfig) -> tuple[int, ...]:
        """Calls per round of a complete run of `config`: the declared schedule, else the
        config's."""
        if self.schedule is None:
            return config.schedule
        rounds = tuple(self.schedule(self.prepare(config)))
        if not rounds or not all(isinstance(w, int) and w >= 0 for w in rounds):
            raise ConfigError("schedule", rounds, f"{self.name}'s declared schedule: whole "
                              "numbers of calls per round")
        return rounds

    def planned_calls(self, config: RunConfig) -> int:
        """Calls a complete run of `config` makes (the config's count, with its distill and
        verify calls, for a method that declares no schedule)."""
        return sum(self.planned(config)) if self.schedule else config.calls

    def prepare(self, config: RunConfig) -> RunConfig:
        """`config` with this method's own settings checked and their defaults filled in."""
        if config.stop_when_agree is not None and not self.adaptive:
            raise ConfigError("stop_when_agree", config.stop_when_agree,
                              f"unset for {self.name}: only {', '.join(ADAPTIVE_METHODS)} "
                              "and methods that declare it run rounds that can stop early")
        own = {s.name: s for s in self.settings if not s.stored_in_config}
        unknown = sorted(set(config.method_settings) - set(own))
        if unknown:
            raise ConfigError("method_settings", unknown[0],
                              f"a setting of {self.name}: {', '.join(own) or 'it has none'}")
        values = {name: s.check(config.method_settings.get(name, s.default))
                  for name, s in own.items()}
        return config if values == config.method_settings else replace(
            config, method_settings=values)


def declared_by(methods: Iterable[Method]) -> dict[str, tuple[Setting, list[Method]]]:
    """Every setting `methods` declare, by name (the first declaration wins), with the
    methods that declare it: one flag or control per name, however many share it."""
    found: dict[str, tuple[Setting, list[Method]]] = {}
    for method in methods:
        for setting in method.settings:
            found.setdefault(setting.name, (setting, []))[1].append(method)
    return found


def as_method(obj: Any, where: str) -> Method:
    """`obj` if it is a Method, or what it returns when called with no arguments."""
    if not isinstance(obj, Method) and callable(obj):
        obj = obj()
    if not isinstance(obj, Method):
        raise ConfigError("method", where,
                          "a function that is, or returns, a pdr_core.run.api.Method")
    return obj


def load_ref(ref: str) -> Method:
    """The method `package.module:function` names, recorded with that reference."""
    if not is_method_ref(ref):
        raise ConfigError("method", ref, "package.module:function")
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("method", ref, f"an importable module ({exc})") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError("method", ref, f"a name defined in {module_name}")
        target = getattr(target, part)
    method = as_method(target, ref)
    return replace(method, ref=ref)


def discover(group: str = ENTRY_POINT_GROUP) -> tuple[Method, ...]:
    """The methods installed packages register under the entry point `group`."""
    found = []
    for point in entry_points(group=group):
        try:
            found.append(load_ref(point.value.replace(" ", "")))
        except ConfigError as exc:  # name the package's entry point, then stop
            raise ConfigError("method", f"entry point {point.name} ({point.value})",
                              f"{exc.allowed}; fix or uninstall the package that declares "
                              f"it under {group}") from None
    return tuple(found)


def registry(builtins: Iterable[Method], plugins: Iterable[Method]) -> dict[str, Method]:
    """Built-ins first, then plugins, by the key a RunConfig records; a plugin is also found
    under its declared name unless a method already has it."""
    table: dict[str, Method] = {m.key: m for m in builtins}
    for method in plugins:
        table.setdefault(method.key, method)
    return table


def lookup(table: Mapping[str, Method], name: str) -> Method:
    """The method `name` (a key, a plugin's declared name, or a `module:function`)."""
    if name in table:
        return table[name]
    by_name = [m for m in table.values() if m.name == name]
    if by_name:
        return by_name[0]
    if is_method_ref(name):
        return load_ref(name)
    raise ConfigError("method", name, f"one of {', '.join(table)}, or a plugin's "
                      "package.module:function")
