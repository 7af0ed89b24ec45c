"""What an evaluation is: its sweep of arms (methods x settings), its problems, and the
parsing of the lists a person types for them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pdr_core.config import RUN_DEFAULTS, ConfigError, RunConfig
from pdr_core.evals.problems import Problem
from pdr_core.run.api import Setting as Declared
from pdr_core.run.api import declared_by
from pdr_core.run.registry import get_method, method_registry
from pdr_core.store import EVAL_TAG_PREFIX

# The methods an evaluation runs unless told otherwise (any registered method may be named).
DEFAULT_METHODS = ("single", "vote", "sr", "pdr")
# Runs of an evaluation in flight at once unless told otherwise.
RUNS_AT_ONCE = 4


# With matched B_seq, each arm of these methods gets a single pass per problem whose
# max_tokens is that arm's run's B_seq on the problem (pdr_core.run.baseline).
MATCHED_METHODS = ("pdr", "sr")

# Declared settings an EvalSpec sweeps through fields of its own (widths, depths, k, ...);
# every other setting a method declares is swept through `EvalSpec.method_settings`.
SPEC_HELD = frozenset({"width", "depth", "k", "distill", "stop_when_agree", "max_tokens"})

# An arm's values of its method's settings from `EvalSpec.method_settings`, by name.
Own = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class EvalPreset:
    """A named sweep: the methods it runs and whether matched single passes join them; the
    widths, depths and budgets stay as given, so every method runs over the same drafts."""

    label: str
    methods: tuple[str, ...]
    matched_bseq: bool = False


EVAL_PRESETS: dict[str, EvalPreset] = {
    "matched-methods": EvalPreset(
        "Methods at matched budget: PDR, SR, a single pass at each one's B_seq, vote, RSA "
        "and tournament over the same number of drafts",
        ("pdr", "sr", "vote", "rsa", "tournament"), matched_bseq=True),
}


def eval_preset(name: str) -> EvalPreset:
    """The preset `name`; ConfigError naming the known ones."""
    if name not in EVAL_PRESETS:
        raise ConfigError("preset", name, f"one of {', '.join(EVAL_PRESETS)}")
    return EVAL_PRESETS[name]


CellKey = tuple[str, str, int, int, int]


@dataclass(frozen=True)
class EvalProgress:
    """Where an evaluation stands: runs done of total (those completed before this session
    included), runs failed and tokens spent (B_total) in this session, seconds left (None
    until a run has finished here)."""

    done: int
    total: int
    eta: float | None = None
    failed: int = 0
    tokens: int = 0


Progress = Callable[[EvalProgress], None]


class EvalError(ValueError):
    """An evaluation that cannot be created, resumed or read; the message says why."""


@dataclass(frozen=True)
class Setting:
    """One arm of the sweep: a method with the width, depth and max_tokens it uses."""

    method: str
    width: int
    depth: int
    max_tokens: int
    # A matched single pass: the method of the arm whose B_seq it matches (width, depth and
    # max_tokens are that arm's); "" for an ordinary arm.
    matched: str = ""
    # The distill operator of an arm whose method uses one (that of the arm a matched
    # single pass matches); "" otherwise.
    distill: str = ""
    # The method's settings this arm sets (EvalSpec.method_settings; a matched single
    # pass: those of the arm it matches).
    own: Own = ()

    @property
    def source(self) -> Setting:
        """The arm a matched single pass matches (itself for an ordinary arm)."""
        if not self.matched:
            return self
        return Setting(self.matched, self.width, self.depth, self.max_tokens,
                       distill=self.distill, own=self.own)

    @property
    def label(self) -> str:
        """`pdr summary w4 d2 t512`, naming only what the method uses (its distill operator
        too, as `registry.shape_label` does); a matched single pass is
        `single @ B_seq of pdr summary w4 d2 t512`."""
        if self.matched:
            return f"single @ B_seq of {self.source.label}"
        parts = [self.method]
        method = get_method(self.method)
        if method.uses("distill") and self.distill:
            parts.append(self.distill)
        if method.uses("width"):
            parts.append(f"w{self.width}")
        if method.uses("depth"):
            parts.append(f"d{self.depth}")
        parts.append(f"t{self.max_tokens}")
        if self.own:
            parts.append(own_text(self.own))
        return " ".join(parts)


def own_text(own: Own) -> str:
    """An arm's own method settings as its label and the accuracy figure show them:
    `n=2 prefer=longest`."""
    return " ".join(f"{name}={_shown(value)}" for name, value in own)


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def sweepable(methods: Iterable[str]) -> dict[str, tuple[Declared, list[str]]]:
    """The settings `methods` declare that `EvalSpec.method_settings` sweeps (all but the
    spec's own fields), by name (the first declaration), with the methods declaring each."""
    declared = declared_by(get_method(name) for name in methods)
    return {name: (setting, [m.key for m in users])
            for name, (setting, users) in declared.items() if name not in SPEC_HELD}


def _checked_settings(values: Mapping[str, Sequence[Any]], methods: Sequence[str]
                      ) -> dict[str, tuple[Any, ...]]:
    """`values` as name -> distinct values, each checked by every method declaring it."""
    if not isinstance(values, Mapping):
        raise ConfigError("method_settings", values, "settings by name, each a list of values")
    known = sweepable(methods)
    out = {}
    for name, given in values.items():
        if name in SPEC_HELD:
            raise ConfigError("method_settings", name, "a method's own setting; "
                              f"{name} is the evaluation's own (its own list)")
        if name not in known:
            raise ConfigError("method_settings", name, "a setting of one of the methods: "
                              + (", ".join(known) or "they declare none"))
        listed = _unique(given if isinstance(given, (list, tuple)) else (given,), name)
        for method in known[name][1]:
            declared = next(s for s in get_method(method).settings if s.name == name)
            for value in listed:
                declared.check(value)
        out[name] = listed
    return out


def _unique(values: Iterable[Any], name: str) -> tuple[Any, ...]:
    out = tuple(dict.fromkeys(values))
    if not out:
        raise ConfigError(name, [], "at least one value")
    return out


@dataclass(frozen=True)
class EvalSpec:
    """The sweep: methods x widths x depths x max_tokens, and the settings every run
    shares. Values a method ignores collapse, so `single` runs once per max_tokens, and
    `k` is capped at each arm's width."""

    dataset: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    # Each shared knob defaults to RunConfig's (a sweep: to that one value).
    widths: tuple[int, ...] = (RUN_DEFAULTS["width"],)
    depths: tuple[int, ...] = (RUN_DEFAULTS["depth"],)
    max_tokens: tuple[int, ...] = (RUN_DEFAULTS["max_tokens"],)
    distill: str = RUN_DEFAULTS["distill"]
    k: int = RUN_DEFAULTS["k"]
    workspace_tokens: int = RUN_DEFAULTS["workspace_tokens"]
    temperature: float = RUN_DEFAULTS["temperature"]
    seed: int = RUN_DEFAULTS["seed"]
    # Calls in flight within each run; None: the run's own default, its widest round's
    # (`config.default_concurrency`), so that one round is one wave.
    run_concurrency: int | None = None
    model: str = ""
    base_url: str = ""
    name: str = ""
    # Adaptive compute for the methods that take it (pdr, sr, rsa); None: never stop early.
    stop_when_agree: float | None = None
    # Code problems: whether their programs run (a person switched it on); else ungraded.
    execute_code: bool = False
    # A single pass at each pdr/sr arm's B_seq, per problem (MATCHED_METHODS).
    matched_bseq: bool = False
    # Methods' other declared settings (`sweepable`), each a list of values: one value is
    # fixed, several are an axis. An arm takes those its method declares.
    method_settings: dict[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", _unique(self.methods, "methods"))
        object.__setattr__(self, "widths", _unique(self.widths, "width"))
        object.__setattr__(self, "depths", _unique(self.depths, "depth"))
        object.__setattr__(self, "max_tokens", _unique(self.max_tokens, "max_tokens"))
        for method in self.methods:
            try:
                get_method(method)
            except ConfigError as exc:
                raise ConfigError("methods", method, f"each {exc.allowed}") from None
        object.__setattr__(self, "method_settings",
                           _checked_settings(self.method_settings, self.methods))
        for setting in self.settings():
            self.config(setting)  # raises ConfigError naming the bad value

    def settings(self) -> list[Setting]:
        """Every distinct arm, in method order."""
        arms: dict[Setting, None] = {}
        for method in self.methods:
            declared = get_method(method)
            widths = self.widths if declared.uses("width") else (1,)
            depths = self.depths if declared.uses("depth") else (1,)
            for width in widths:
                for depth in depths:
                    for max_tokens in self.max_tokens:
                        for own in self._own(declared.settings):
                            arms[Setting(method, width, depth, max_tokens,
                                         distill=self.distill if declared.uses("distill")
                                         else "", own=own)] = None
        if self.matched_bseq:
            for arm in list(arms):
                if arm.method in MATCHED_METHODS:
                    arms[Setting("single", arm.width, arm.depth, arm.max_tokens,
                                 arm.method, arm.distill, arm.own)] = None
        return list(arms)

    def _own(self, declared: Sequence[Declared]) -> list[Own]:
        """Every combination of the values of the settings in `declared` this spec sets."""
        names = [s.name for s in declared if s.name in self.method_settings]
        combos = itertools.product(*(self.method_settings[n] for n in names))
        return [tuple(zip(names, combo, strict=True)) for combo in combos]

    def config(self, setting: Setting) -> RunConfig:
        """The arm's configuration; a matched single pass's max_tokens is set per problem
        when it runs (`matched_config`), here it is the arm's per-call budget."""
        own = {} if setting.matched else dict(setting.own)
        method = get_method(setting.method)
        in_config = {s.name for s in method.settings if s.stored_in_config}
        return method.prepare(RunConfig(
            method=setting.method, width=setting.width, depth=setting.depth,
            max_tokens=setting.max_tokens, distill=setting.distill or self.distill,
            k=self._k(setting),
            workspace_tokens=self.workspace_tokens, temperature=self.temperature,
            seed=self.seed, concurrency=self.run_concurrency, model=self.model,
            base_url=self.base_url,
            stop_when_agree=(self.stop_when_agree if get_method(setting.method).adaptive
                             else None),
            method_settings={k: v for k, v in own.items() if k not in in_config},
            **{k: v for k, v in own.items() if k in in_config},
        ))

    def _k(self, setting: Setting) -> int:
        # k cannot exceed the narrowest round it selects from (the width, 1 for sr): a grid
        # with widths 2 and 8 and k 4 still runs, with k capped to 2 on the narrow arm.
        selects = setting.method == "sr" or get_method(setting.method).uses("k")
        return min(self.k, setting.width) if selects else self.k

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}
        data["method_settings"] = {k: list(v) for k, v in self.method_settings.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSpec:
        known = {f.name for f in fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in known}
        return cls(**kwargs)

    def identity(self) -> dict[str, Any]:
        """What must match for a run of the same id to resume it (not the name, nor how
        many calls a run may have in flight)."""
        data = self.to_dict()
        data.pop("name")
        data.pop("run_concurrency")
        if not data["method_settings"]:  # as evaluations stored before it was a field
            data.pop("method_settings")
        return data


@dataclass
class Evaluation:
    """A stored evaluation: its id, spec and problems."""

    id: str
    spec: EvalSpec
    problems: list[Problem]
    created_at: str
    dataset_hash: str

    @property
    def name(self) -> str:
        return self.spec.name or self.id

    @property
    def tag(self) -> str:
        return f"{EVAL_TAG_PREFIX}{self.id}"

    def cells(self) -> list[tuple[Problem, Setting]]:
        """Every (problem, arm) pair, arm by arm."""
        return [(p, s) for s in self.spec.settings() for p in self.problems]


def cell_key(problem_id: str, setting: Setting) -> CellKey:
    """The cell's key in the attempts table; an arm's own settings join its method's
    column, so arms that differ only in them never share a run."""
    method = f"{setting.method}@{setting.matched}" if setting.matched else setting.method
    if setting.own:
        method += " " + json.dumps(dict(setting.own), sort_keys=True)
    return (problem_id, method, setting.width, setting.depth, setting.max_tokens)


def parse_int_list(text: str, name: str) -> tuple[int, ...]:
    """'4,8' -> (4, 8); raises ConfigError naming the option otherwise."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(name, text, "comma-separated whole numbers, e.g. 4,8") from None
    if not values:
        raise ConfigError(name, text, "at least one whole number")
    return values


def parse_methods(text: str) -> tuple[str, ...]:
    """'single,pdr' -> ('single', 'pdr'); raises ConfigError on an unknown method."""
    methods = tuple(part for part in text.replace(" ", "").split(",") if part)
    for method in methods or ("",):
        try:
            get_method(method)
        except ConfigError as exc:
            raise ConfigError("methods", text, f"comma-separated, each {exc.allowed}"
                              ) from None
    return methods


def method_order() -> tuple[str, ...]:
    """Every registered method in the order evaluations list them: the baselines and PDR,
    then the other built-ins, then the installed plugins'."""
    return DEFAULT_METHODS + tuple(m for m in method_registry() if m not in DEFAULT_METHODS)
