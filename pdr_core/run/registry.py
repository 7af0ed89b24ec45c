"""The built-in methods, declared through the method API, and the registry of all methods.

Their settings are RunConfig fields, so a setting's default is that field's default, read
from the dataclass, never written again here. The registry is the built-ins followed by the
methods installed packages register under the entry point group `pdr_inspector.methods`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pdr_core.config import (
    DISTILLS,
    FINAL_SELECTS,
    MAX_DEPTH,
    MAX_MOA_LAYERS,
    MAX_WIDTH,
    MOA_LAYERS,
    RUN_DEFAULTS,
    SELECTIONS,
    RunConfig,
)
from pdr_core.run.api import Method, Setting, discover, lookup, registry
from pdr_core.run.moa import moa
from pdr_core.run.pdr import majority, pdr, single, sr
from pdr_core.run.rsa import rsa
from pdr_core.run.selection import generative_select, tournament


def _field(name: str, kind: type, **declared: Any) -> Setting:
    """A setting stored in the RunConfig field `name`, with that field's default."""
    return Setting(name, kind, RUN_DEFAULTS[name], **declared)


WIDTH = _field("width", int, low=1, high=MAX_WIDTH, aliases=("--population",),
               label="Width M (drafts per round)",
               help="drafts per round (M); rsa: the population N; tournament, select: the "
                    "candidates; moa: proposers of the run's model when --proposers is empty")
DEPTH = _field("depth", int, low=1, high=MAX_DEPTH, aliases=("--steps",),
               label="Depth R (rounds)",
               help="rounds (R), the last of width 1; rsa: aggregation steps T after the "
                    "drafts")
K = _field("k", int, low=1, high=MAX_WIDTH, aliases=("--subset",),
           label="k (drafts per workspace)",
           help="drafts selected by top-k / random-k; rsa: candidates K each aggregation "
                "reads")
DISTILL = _field("distill", str, choices=DISTILLS, label="Distill operator",
                 help="how a round's drafts become the next round's workspace")
SR_SUMMARY = _field("sr_summary", bool, label="SR: notes on the previous solution",
                    help="sr: a summary call writes notes on the previous solution each round")
SR_FEEDBACK = _field("sr_feedback", bool, label="SR: the previous program's test results",
                     help="sr on a code problem: the refine prompt gets what the previous "
                          "program's tests said, trimmed to kappa (no call)")
FINAL_SELECT = _field("final_select", str, choices=FINAL_SELECTS,
                      label="How the last round's answer is chosen",
                      help="how a last round wider than 1 gives the answer (recorded on the "
                           "run); aggregate (rsa): one more aggregation call writes it; "
                           "verify (pdr, vote, rsa): the model scores each draft (one call "
                           "each), the best-scored wins")
SELECTION = _field("selection", str, choices=SELECTIONS, flag="--select",
                   label="Top-k ranking",
                   help="how topk and per-sample-topk rank drafts: consensus (answer clusters, "
                        "this tool's heuristic) or verify (the model scores each draft, one "
                        "call each)")
GROUP = _field("group", int, low=2, high=MAX_WIDTH, label="Tournament group G",
               help="tournament: candidates per judged group (G)")
VOTES = _field("votes", int, low=1, high=64, label="Tournament judges per group V",
               help="tournament: judge calls per group (V); the majority advances")
# Declaring it is what makes a method adaptive: it may stop once a round's answers agree.
STOP_WHEN_AGREE = _field("stop_when_agree", float, low=0.0, high=1.0,
                         label="Stop when answers agree (0 = never)",
                         help="stop once a round's answers agree at least this much (e.g. "
                              "0.8); recorded as stop reason 'converged'")

# Mixture of agents' own settings (RunConfig.method_settings; parsed by config.moa_routes).
PROPOSERS = Setting("proposers", str, "", label="Proposers (MODEL@URL or MODEL, comma-separated)",
                    help="moa: one proposer per entry, on its own endpoint (MODEL@URL) or the "
                         "run's (MODEL); empty: width proposers of the run's model")
LAYERS = Setting("layers", int, MOA_LAYERS, low=1, high=MAX_MOA_LAYERS, label="Layers L",
                 help="moa: layers of proposers; each after the first reads the layer before")
AGGREGATOR = Setting("aggregator", str, "", label="Aggregator (MODEL@URL or MODEL)",
                     help="moa: who writes the answer from the last layer; empty: the run's "
                          "model")

BUILTINS = (
    Method("pdr", "PDR (parallel-distill-refine)", pdr,
           (WIDTH, DEPTH, DISTILL, K, SELECTION, FINAL_SELECT, STOP_WHEN_AGREE)),
    Method("sr", "SR (sequential refinement)", sr,
           (DEPTH, SR_SUMMARY, SR_FEEDBACK, STOP_WHEN_AGREE)),
    Method("single", "Single pass (long chain of thought)", single),
    Method("vote", "Majority vote (self-consistency)", majority, (WIDTH, FINAL_SELECT)),
    Method("rsa", "RSA (recursive self-aggregation)", rsa,
           (WIDTH, DEPTH, K, FINAL_SELECT, STOP_WHEN_AGREE)),
    Method("tournament", "Tournament (judged groups, winners advance)", tournament,
           (WIDTH, GROUP, VOTES)),
    Method("select", "Generative selection (the model picks the best)", generative_select,
           (WIDTH,)),
    Method("moa", "Mixture of agents (proposers from several models, an aggregator)", moa,
           (WIDTH, PROPOSERS, LAYERS, AGGREGATOR)),
)


@lru_cache(maxsize=1)
def method_registry() -> dict[str, Method]:
    """Every method this installation knows, by the name a run records: the built-ins,
    then the installed plugins'. Cached: `method_registry.cache_clear()` looks again."""
    return registry(BUILTINS, discover())


_BUILTIN = {m.name: m for m in BUILTINS}


def get_method(name: str) -> Method:
    """The method `name`: registered, or imported from its `package.module:function`. A
    built-in is found without looking for plugins."""
    return _BUILTIN.get(name) or lookup(method_registry(), name)


def planned_calls(config: RunConfig) -> int:
    """Calls a complete run of `config` makes, from its method's declared schedule: the
    one count the budget preview, the run view and the command line's bar show."""
    return get_method(config.method).planned_calls(config)


def shape_label(config: dict[str, Any]) -> str:
    """`pdr (summary, 4×2)`: a run's method and, as far as the method uses them, its
    distill operator and width × depth (and a tapering width schedule: `widths 8,4,1`). A method not
    registered here shows its name alone (a stored name is never imported)."""
    name = str(config.get("method", ""))
    method = _BUILTIN.get(name) or method_registry().get(name)
    if method is None:
        return name
    parts = []
    if method.uses("distill"):
        parts.append(str(config.get("distill", RUN_DEFAULTS["distill"])))
    width = config.get("width", RUN_DEFAULTS["width"])
    depth = config.get("depth", RUN_DEFAULTS["depth"])
    schedule = config.get("width_schedule") or ()
    if method.uses("width") and method.uses("depth"):
        parts.append(f"{width}×{depth}")
        # A schedule other than `width` in every round but the last is worth showing.
        if any(w != width for w in schedule[:-1]):
            parts.append("widths " + ",".join(map(str, schedule)))
    elif method.uses("width"):
        parts.append(f"width {width}")
    elif method.uses("depth"):
        parts.append(f"depth {depth}")
    return f"{name} ({', '.join(parts)})" if parts else name
