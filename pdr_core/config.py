"""The validated, frozen configuration of one run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from pdr_core.prompts import (
    SR_REFINE,
    SR_REFINE_FEEDBACK,
    SR_REFINE_NOTES,
    PromptSet,
    template_fields,
)
from pdr_core.providers.base import DEFAULT_MAX_IN_FLIGHT
from pdr_core.providers.routes import Route, parse_route, parse_routes

# The built-in methods, whose schedules this module works out; their labels and settings
# are declared in pdr_core.run.registry. A plugin method is named by its reference,
# `package.module:function` (see pdr_core.run.api).
METHODS = ("pdr", "sr", "single", "vote", "rsa", "tournament", "select", "moa")
# Built-ins whose own settings live in `method_settings`, as a plugin's do (moa's routes).
SETTINGS_METHODS = ("moa",)
# Mixture of agents: layers of proposers before its aggregator, by default.
MOA_LAYERS = 2
MAX_MOA_LAYERS = 8
# Those that run several rounds whose answers can agree early (--stop-when-agree).
ADAPTIVE_METHODS = ("pdr", "sr", "rsa")
_METHOD_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_method_ref(name: object) -> bool:
    """Whether `name` is a plugin method's `package.module:function`."""
    return isinstance(name, str) and _METHOD_REF.match(name) is not None
# How a last round wider than 1 yields the final answer; recorded on the run. `aggregate`
# (rsa only): one more aggregation call over the last population writes the answer.
# `verify`: the model scores each draft of the last round (one call each); the best wins.
FINAL_SELECTS = ("vote", "aggregate", "verify")
# Methods whose last round can leave several drafts for a final selection to choose from.
FINAL_VERIFY_METHODS = ("pdr", "vote", "rsa")
# How topk and per-sample-topk rank drafts: `consensus` (answer clusters, this tool's
# heuristic, see pdr_core.run.operators) or `verify` (the model scores each draft, one call each).
SELECTIONS = ("consensus", "verify")
RANKED = ("topk", "per-sample-topk")
# Named starting points: the paper's example schedule, and a small one for the bundled model.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"method": "pdr", "width": 4, "depth": 2},
    "paper": {"method": "pdr", "width_schedule": (8, 4, 1), "depth": 3},
}
DEFAULT_PRESET = "small"
# feedback (code tasks only): the top-k programs with their test results.
DISTILLS = ("summary", "topk", "per-sample-topk", "random-k", "feedback")
CODE_ONLY_DISTILLS = ("feedback",)
EXTRACTIVE = ("topk", "per-sample-topk", "random-k", "feedback")

MAX_WIDTH = 256
MAX_DEPTH = 32
MIN_WORKSPACE_TOKENS = 16


class ConfigError(ValueError):
    """An invalid configuration value; names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str):
        super().__init__(f"{field_name}={value!r} is invalid: {allowed}")
        self.field = field_name
        self.value = value
        self.allowed = allowed


def parse_schedule(text: str) -> tuple[int, ...]:
    """'8,4,1' -> (8, 4, 1); raises ConfigError on anything else."""
    try:
        schedule = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(
            "width_schedule", text, "comma-separated whole numbers, e.g. 8,4,1"
        ) from None
    return schedule


@dataclass(frozen=True)
class RunConfig:
    """How to run one question. `schedule` is derived: the width of every round.

    Width and depth are used as the method needs them: `single` is one call, `vote` is one
    round of `width` samples, `sr` is `depth` rounds of width 1, and `pdr` follows
    `width_schedule` or, without one, `width` for rounds 1..R-1 and 1 for round R.

    SR refines one answer and takes no distill operator: round r sees the question and the
    previous solution. With `sr_summary` a summary call writes notes on the previous
    solution first (one more call a round); with `sr_feedback` (code problems) the previous
    program's test results follow it instead, trimmed to kappa (no call).
    """

    method: str = "pdr"
    width: int = 4
    depth: int = 2
    width_schedule: tuple[int, ...] | None = None
    distill: str = "summary"
    k: int = 2
    max_tokens: int = 1024
    workspace_tokens: int = 512
    # The summary call's own output budget (None: the per-call budget). kappa bounds the
    # workspace text it leaves, not the tokens it may think in.
    distill_max_tokens: int | None = None
    total_budget: int | None = None
    temperature: float = 0.8
    seed: int = 0
    # Calls in flight at once; None: the widest round's (one round, one wave), at most the
    # requests a provider keeps open at once. Resolved on creation, so a run records it.
    concurrency: int | None = None
    model: str = ""
    base_url: str = ""
    sr_summary: bool = False
    sr_feedback: bool = False
    final_select: str = "vote"
    selection: str = "consensus"
    # tournament: candidates per group, and judge calls per group (the majority wins).
    group: int = 2
    votes: int = 1
    # pdr, sr, rsa: stop once a round's answers agree at least this much (None: never).
    stop_when_agree: float | None = None
    # A plugin method's own settings (those no field above holds), by name.
    method_settings: dict[str, Any] = field(default_factory=dict, hash=False)
    prompts: PromptSet = field(default_factory=PromptSet)
    schedule: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS and not is_method_ref(self.method):
            raise ConfigError("method", self.method, f"one of {', '.join(METHODS)}, or a "
                              "plugin's package.module:function")
        self._check_method_settings()
        if self.final_select not in FINAL_SELECTS:
            raise ConfigError("final_select", self.final_select,
                              f"one of {', '.join(FINAL_SELECTS)}")
        if self.final_select == "aggregate" and self.method != "rsa":
            raise ConfigError("final_select", self.final_select,
                              f"vote: only rsa ends with an aggregation, not {self.method}")
        self._check_selection()
        if self.distill not in DISTILLS:
            raise ConfigError("distill", self.distill, f"one of {', '.join(DISTILLS)}")
        _check_int("width", self.width, 1, MAX_WIDTH)
        _check_int("depth", self.depth, 1, MAX_DEPTH)
        _check_int("k", self.k, 1, MAX_WIDTH)
        _check_int("max_tokens", self.max_tokens, 1, 10_000_000)
        _check_int("workspace_tokens", self.workspace_tokens, MIN_WORKSPACE_TOKENS, 10_000_000)
        _check_int("group", self.group, 2, MAX_WIDTH)
        _check_int("votes", self.votes, 1, 64)
        self._check_stop_when_agree()
        if self.distill_max_tokens is not None:
            _check_int("distill_max_tokens", self.distill_max_tokens, 1, 10_000_000)
        if self.total_budget is not None:
            _check_int("total_budget", self.total_budget, 1, 10**12)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError("seed", self.seed, "a whole number")
        if (
            isinstance(self.temperature, bool)
            or not isinstance(self.temperature, (int, float))
            or not 0 <= self.temperature <= 2
        ):
            raise ConfigError("temperature", self.temperature, "a number from 0 to 2")
        if not isinstance(self.prompts, PromptSet):
            raise ConfigError("prompts", self.prompts, "a PromptSet")
        for name in ("sr_summary", "sr_feedback"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "true or false")
        self._check_sr_notes()
        object.__setattr__(self, "schedule", self._resolve_schedule())
        if self.concurrency is None:
            object.__setattr__(self, "concurrency", default_concurrency(self.schedule))
        _check_int("concurrency", self.concurrency, 1, 4096)
        self._check_k()

    def _check_selection(self) -> None:
        if self.final_select == "verify" and self.method not in FINAL_VERIFY_METHODS:
            raise ConfigError("final_select", "verify",
                              f"vote: {self.method} ends with one answer, there is nothing to "
                              f"verify among (verify applies to {', '.join(FINAL_VERIFY_METHODS)})")
        if self.selection not in SELECTIONS:
            raise ConfigError("selection", self.selection, f"one of {', '.join(SELECTIONS)}")
        if self.selection == "verify" and (self.method != "pdr" or self.distill not in RANKED):
            raise ConfigError("selection", "verify",
                              f"consensus, or verify with method pdr and distill "
                              f"{' or '.join(RANKED)} (the operators that rank drafts)")

    @property
    def verify_calls(self) -> int:
        """Verification calls of a complete run: one per draft of every round whose drafts
        are ranked by verify, and one per draft of a last round wider than 1 under a final
        selection by verify."""
        ranked = sum(self.schedule[:-1]) if self.selection == "verify" else 0
        last = self.schedule[-1] if self.final_select == "verify" and self.schedule[-1] > 1 \
            else 0
        return ranked + last

    def _check_stop_when_agree(self) -> None:
        value = self.stop_when_agree
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError("stop_when_agree", value,
                              "a share of the round's answers above 0 and at most 1, e.g. 0.8")
        if self.method in METHODS and self.method not in ADAPTIVE_METHODS:
            # A plugin says whether it can stop early (method_api.Method.prepare checks it).
            raise ConfigError("stop_when_agree", value,
                              f"unset for {self.method}: only {', '.join(ADAPTIVE_METHODS)} "
                              "run rounds that can stop early")

    def _check_method_settings(self) -> None:
        settings = self.method_settings
        if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
            raise ConfigError("method_settings", settings, "an object of settings by name")
        if settings and self.method in METHODS and self.method not in SETTINGS_METHODS:
            raise ConfigError("method_settings", settings,
                              f"empty: {self.method} keeps its settings in their own fields")

    def _resolve_schedule(self) -> tuple[int, ...]:
        explicit = self.width_schedule
        if explicit is not None and self.method != "pdr":
            raise ConfigError(
                "width_schedule", explicit, f"only method pdr takes a schedule, not {self.method}"
            )
        if self.method == "single":
            return (1,)
        if self.method == "vote":
            return (self.width,)
        if self.method == "sr":
            return (1,) * self.depth
        if self.method == "rsa":  # N drafts, then T = depth aggregation steps of N
            last = (1,) if self.final_select == "aggregate" else ()
            return (self.width,) * (self.depth + 1) + last
        if self.method == "select":
            return (self.width, 1) if self.width > 1 else (1,)
        if self.method == "moa":  # L layers of P proposers, then the aggregator
            layers = self.method_settings.get("layers", MOA_LAYERS)
            _check_int("layers", layers, 1, MAX_MOA_LAYERS)
            self._check_aggregator()
            return (len(self.moa_routes),) * layers + (1,)
        if self.method not in METHODS:  # a plugin: one round of `width` as the estimate
            return (self.width,)
        if self.method == "tournament":
            return (self.width, *tournament_judges(self.width, self.group, self.votes))
        if explicit is None:
            return (self.width,) if self.depth == 1 else (self.width,) * (self.depth - 1) + (1,)
        schedule = tuple(explicit)
        if len(schedule) != self.depth:
            raise ConfigError(
                "width_schedule",
                ",".join(map(str, schedule)),
                f"one width per round: depth is {self.depth}, the schedule has {len(schedule)}",
            )
        for width in schedule:
            _check_int("width_schedule", width, 1, MAX_WIDTH)
        return schedule

    def _check_sr_notes(self) -> None:
        """SR's notes or test feedback need a place in its template: the built-in one gets
        its section; an edited one without {workspace} is refused rather than drop them."""
        if self.method != "sr" or not (self.sr_summary or self.sr_feedback):
            return
        name = "sr_feedback" if self.sr_feedback else "sr_summary"
        if self.sr_summary and self.sr_feedback:
            raise ConfigError("sr_feedback", True, "false while sr_summary is on: the "
                              "refine prompt takes notes or test results, not both")
        if "workspace" in template_fields(self.prompts.sr_refine):
            return
        if self.prompts.sr_refine == SR_REFINE:
            section = SR_REFINE_FEEDBACK if self.sr_feedback else SR_REFINE_NOTES
            object.__setattr__(self, "prompts", replace(self.prompts, sr_refine=section))
            return
        raise ConfigError(name, True,
                          "false, or an sr_refine template that uses {workspace} (the "
                          + ("test results)" if self.sr_feedback else "notes)"))

    def _check_k(self) -> None:
        # k selects from every round but the last; it cannot take more drafts than exist.
        if self.method == "rsa":
            if self.k > self.width:
                raise ConfigError("k", self.k, f"from 1 to {self.width}: each aggregation "
                                  f"reads k of the {self.width} candidates")
            return
        if self.method == "sr" or self.distill not in EXTRACTIVE or len(self.schedule) < 2:
            return
        narrowest = min(self.schedule[:-1])
        if self.k > narrowest:
            raise ConfigError(
                "k",
                self.k,
                f"from 1 to {narrowest}: operator {self.distill} selects k drafts from rounds "
                f"as narrow as {narrowest}",
            )

    def _check_aggregator(self) -> None:
        text = str(self.method_settings.get("aggregator") or "").strip()
        try:
            if text:
                parse_route(text)
        except ValueError as exc:
            raise ConfigError("aggregator", text, f"MODEL@URL or MODEL ({exc})") from None

    @property
    def moa_routes(self) -> tuple[Route | None, ...]:
        """Mixture of agents' proposers (its setting `proposers`, `MODEL@URL,MODEL`); none
        given: `width` calls of the run's own provider (None)."""
        try:
            routes = parse_routes(str(self.method_settings.get("proposers") or ""))
        except ValueError as exc:
            raise ConfigError("proposers", self.method_settings.get("proposers"),
                              f"MODEL@URL or MODEL, comma-separated ({exc})") from None
        if len(routes) > MAX_WIDTH:
            raise ConfigError("proposers", len(routes), f"at most {MAX_WIDTH} proposers")
        return routes or (None,) * self.width

    @property
    def rounds(self) -> int:
        return len(self.schedule)

    @property
    def distill_budget(self) -> int:
        """Output budget of a summary call."""
        return self.distill_max_tokens or self.max_tokens

    @property
    def summary_calls(self) -> bool:
        """Whether a summary call runs between rounds (PDR's summary operator, or SR's
        optional notes)."""
        if self.method == "sr":
            return self.sr_summary
        return self.method == "pdr" and self.distill == "summary"

    @property
    def calls(self) -> int:
        """Number of model calls a complete run makes."""
        distill_calls = self.rounds - 1 if self.summary_calls else 0
        return sum(self.schedule) + distill_calls + self.verify_calls

    def to_dict(self) -> dict[str, Any]:
        """The `config` object of a pdr-trace/1 trace."""
        return {
            "method": self.method,
            "width_schedule": list(self.schedule),
            # rsa's depth is its aggregation steps, one fewer than its rounds.
            "depth": self.depth if self.method == "rsa" else self.rounds,
            "width": self.width,
            "distill": self.distill,
            "k": self.k,
            "max_tokens": self.max_tokens,
            "workspace_tokens": self.workspace_tokens,
            "distill_max_tokens": self.distill_max_tokens,
            "total_budget": self.total_budget,
            "temperature": self.temperature,
            "seed": self.seed,
            "concurrency": self.concurrency,
            "model": self.model,
            "base_url": self.base_url,
            "sr_summary": self.sr_summary,
            "sr_feedback": self.sr_feedback,
            "final_select": self.final_select,
            "selection": self.selection,
            "group": self.group,
            "votes": self.votes,
            "stop_when_agree": self.stop_when_agree,
            # Only a plugin's runs hold it: older readers and traces see what they knew.
            **({"method_settings": dict(self.method_settings)} if self.method_settings
               else {}),
            "prompts": self.prompts.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of `to_dict`; unknown keys are ignored so newer traces still load."""
        known = {f.name for f in fields(cls) if f.init}
        kwargs = {key: value for key, value in data.items() if key in known}
        if kwargs.get("width_schedule") is not None:
            kwargs["width_schedule"] = tuple(kwargs["width_schedule"])
        if kwargs.get("method", "pdr") != "pdr":
            kwargs.pop("width_schedule", None)
        if kwargs.get("method") == "sr" and "sr_summary" not in kwargs:
            # Runs saved before SR took no distill call made a summary call every round.
            kwargs["sr_summary"] = kwargs.get("distill", "summary") == "summary"
        if isinstance(kwargs.get("prompts"), dict):
            kwargs["prompts"] = PromptSet.from_dict(kwargs["prompts"])
        return cls(**kwargs)


# Every knob's default, read from RunConfig's fields: the one place a default is written.
# The command line, the method declarations, EvalSpec and the pages read it from here.
RUN_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING})


def tournament_judges(width: int, group: int, votes: int) -> tuple[int, ...]:
    """Judge calls per tournament round when every candidate survives: `votes` per group of
    more than one; a lone candidate left over advances without a judge."""
    rounds = []
    while width > 1:
        groups, rest = divmod(width, group)
        judged = groups + (1 if rest > 1 else 0)
        rounds.append(votes * judged)
        width = groups + (1 if rest else 0)
    return tuple(rounds)


def default_concurrency(schedule: Sequence[int]) -> int:
    """Calls in flight when the user sets no limit: the widest round's, so that every round
    goes out as one wave, up to what a provider keeps open at once."""
    return min(max(schedule), DEFAULT_MAX_IN_FLIGHT)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(name, value, f"a whole number from {low} to {high}")


def schedule_text(schedule: Sequence[int]) -> str:
    return ",".join(str(w) for w in schedule)
