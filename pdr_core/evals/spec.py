"""What an evaluation is: its sweep of arms (methods x settings), its problems, and the
parsing of the lists a person types for them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from pdr_core.config import ConfigError, RunConfig
from pdr_core.evals.datasets import Problem
from pdr_core.run.registry import get_method, method_registry
from pdr_core.store import EVAL_TAG_PREFIX

# The methods an evaluation runs unless told otherwise (any registered method may be named).
DEFAULT_METHODS = ("single", "vote", "sr", "pdr")


# With matched B_seq, each arm of these methods gets a single pass per problem whose
# max_tokens is that arm's run's B_seq on the problem (pdr_core.run.baseline).
MATCHED_METHODS = ("pdr", "sr")


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

    @property
    def source(self) -> Setting:
        """The arm a matched single pass matches (itself for an ordinary arm)."""
        if not self.matched:
            return self
        return Setting(self.matched, self.width, self.depth, self.max_tokens)

    @property
    def label(self) -> str:
        """`pdr w4 d2 t512`, naming only what the method uses; a matched single pass is
        `single @ B_seq of pdr w4 d2 t512`."""
        if self.matched:
            return f"single @ B_seq of {self.source.label}"
        parts = [self.method]
        method = get_method(self.method)
        if method.uses("width"):
            parts.append(f"w{self.width}")
        if method.uses("depth"):
            parts.append(f"d{self.depth}")
        parts.append(f"t{self.max_tokens}")
        return " ".join(parts)


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
    widths: tuple[int, ...] = (4,)
    depths: tuple[int, ...] = (2,)
    max_tokens: tuple[int, ...] = (1024,)
    distill: str = "summary"
    k: int = 2
    workspace_tokens: int = 512
    temperature: float = 0.8
    seed: int = 0
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
                        arms[Setting(method, width, depth, max_tokens)] = None
        if self.matched_bseq:
            for arm in list(arms):
                if arm.method in MATCHED_METHODS:
                    arms[Setting("single", arm.width, arm.depth, arm.max_tokens,
                                 arm.method)] = None
        return list(arms)

    def config(self, setting: Setting) -> RunConfig:
        """The arm's configuration; a matched single pass's max_tokens is set per problem
        when it runs (`matched_config`), here it is the arm's per-call budget."""
        return get_method(setting.method).prepare(RunConfig(
            method=setting.method, width=setting.width, depth=setting.depth,
            max_tokens=setting.max_tokens, distill=self.distill, k=self._k(setting),
            workspace_tokens=self.workspace_tokens, temperature=self.temperature,
            seed=self.seed, concurrency=self.run_concurrency, model=self.model,
            base_url=self.base_url,
            stop_when_agree=(self.stop_when_agree if get_method(setting.method).adaptive
                             else None),
        ))

    def _k(self, setting: Setting) -> int:
        # k cannot exceed the narrowest round it selects from (the width, 1 for sr): a grid
        # with widths 2 and 8 and k 4 still runs, with k capped to 2 on the narrow arm.
        selects = setting.method == "sr" or get_method(setting.method).uses("k")
        return min(self.k, setting.width) if selects else self.k

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

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
    method = f"{setting.method}@{setting.matched}" if setting.matched else setting.method
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
