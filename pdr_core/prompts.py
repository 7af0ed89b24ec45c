"""Prompt templates of every stage, as module constants, overridable per run.

Templates use `str.format` fields. Each stage lists the fields it may use and the ones it
must use, so an edited template is checked before any call is made.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, replace

SYSTEM = (
    "You are a careful mathematician. Reason step by step, check your work, "
    "and put the final answer in \\boxed{}."
)

DRAFT = "Solve the following problem.\n\nProblem:\n{question}"

# The paper's summary: agreements, contradictions, derived facts, unresolved sub-goals and
# next actions. The answer tally ({answer_tally}, vote counts) is left out on purpose: it
# anchors the summariser on the majority. A template may add it.
SUMMARY = (
    "Below are attempts at the problem. Distill them into a short workspace for the next "
    "round of solvers. Write, in at most {workspace_tokens} tokens: what the attempts agree "
    "on; where they contradict each other; the facts and intermediate results they derived; "
    "the sub-goals still unresolved; and the next actions to take. Do not solve the "
    "problem anew.\n\n"
    "Problem:\n{question}\n\n"
    "{drafts}"
)

REFINE = (
    "Solve the following problem. A workspace distilled from earlier attempts is given; "
    "it may contain mistakes. Use what is right in it, fix what is wrong, and give a "
    "complete solution.\n\n"
    "Problem:\n{question}\n\n"
    "Workspace:\n{workspace}"
)

# SR refines one answer: round r sees the question and the previous solution, once.
SR_REFINE = (
    "Improve the solution below. Check each step, correct any mistake, and give a "
    "complete solution.\n\n"
    "Problem:\n{question}\n\n"
    "Previous solution:\n{draft}"
)
# With SR's optional summary call, its notes on the previous solution follow it.
SR_REFINE_NOTES = SR_REFINE + "\n\nNotes on it:\n{workspace}"
# With SR's test feedback (code problems), what the previous program's tests said follows it.
SR_REFINE_FEEDBACK = SR_REFINE + "\n\nWhat its tests said:\n{workspace}"

# RSA: a new candidate from the question and k candidates of the previous population.
AGGREGATE = (
    "Below are candidate solutions to the problem. Some may be wrong, and they may "
    "disagree. Check them, combine what is right in them, fix what is wrong, and write one "
    "complete, correct solution.\n\n"
    "Problem:\n{question}\n\n"
    "{candidates}"
)
# Mixture of agents: a proposer of layer l > 1, and the aggregator, read every response of
# the layer before (the aggregate-and-synthesize prompt of arXiv 2406.04692, for a problem).
SYNTHESIZE = (
    "Below are responses to the problem from several models. Evaluate them critically: "
    "some may be biased or wrong. Synthesize them into one refined, accurate and complete "
    "solution; do not simply copy one of them.\n\n"
    "Problem:\n{question}\n\n"
    "{candidates}"
)
# Tournament judges and generative selection: the model names the best candidate by its
# number, in \boxed{}, which `pdr_core.run.selection.parse_choice` reads.
JUDGE = (
    "Below are {count} candidate solutions to the problem. Compare them and decide which "
    "one is correct (or, if several are, the best argued). Do not solve the problem anew. "
    "End with the number of the best candidate in \\boxed{{}}, e.g. \\boxed{{1}}.\n\n"
    "Problem:\n{question}\n\n"
    "{candidates}"
)
SELECT = (
    "Below are {count} candidate solutions to the problem. Read them all, check their "
    "reasoning, and select the one most likely to be correct. End with the number of the "
    "selected candidate in \\boxed{{}}, e.g. \\boxed{{2}}.\n\n"
    "Problem:\n{question}\n\n"
    "{candidates}"
)

# Verification (`--select verify`, `--final-select verify`): the model scores one draft, 0 to
# 10, in \boxed{}, which `pdr_core.run.scores.parse_score` reads.
VERIFY = (
    "Below is a solution to the problem. Check it step by step: is every step valid and is "
    "the final answer correct? Do not solve the problem anew. End with a score from 0 "
    "(certainly wrong) to 10 (certainly correct) in \\boxed{{}}, e.g. \\boxed{{7}}.\n\n"
    "Problem:\n{question}\n\n"
    "Solution:\n{solution}"
)

# One draft as it appears inside an extractive workspace, and inside a summary prompt (there
# without its extracted answer, which would anchor the summariser).
DRAFT_ITEM = "### Attempt {index} (answer: {answer})\n{text}"
SUMMARY_ITEM = "### Attempt {index}\n{text}"

# Which fields each template may use, and which it must use.
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "system": (frozenset(), frozenset()),
    "draft": (frozenset({"question"}), frozenset({"question"})),
    "summary": (
        frozenset({"question", "drafts", "answer_tally", "workspace_tokens"}),
        frozenset({"question", "drafts"}),
    ),
    "refine": (frozenset({"question", "workspace"}), frozenset({"question", "workspace"})),
    "sr_refine": (
        frozenset({"question", "workspace", "draft"}),
        frozenset({"question", "draft"}),
    ),
    "aggregate": (frozenset({"question", "candidates"}), frozenset({"question", "candidates"})),
    "synthesize": (frozenset({"question", "candidates", "count"}),
                   frozenset({"question", "candidates"})),
    "judge": (frozenset({"question", "candidates", "count"}),
              frozenset({"question", "candidates"})),
    "select": (frozenset({"question", "candidates", "count"}),
               frozenset({"question", "candidates"})),
    "verify": (frozenset({"question", "solution"}), frozenset({"question", "solution"})),
}


class TemplateError(ValueError):
    """A template uses an unknown field, leaves out a required one, or does not parse."""


def template_fields(template: str) -> set[str]:
    """The `{field}` names a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class PromptSet:
    """The templates one run uses."""

    system: str = SYSTEM
    draft: str = DRAFT
    summary: str = SUMMARY
    refine: str = REFINE
    sr_refine: str = SR_REFINE
    aggregate: str = AGGREGATE
    synthesize: str = SYNTHESIZE
    judge: str = JUDGE
    select: str = SELECT
    verify: str = VERIFY

    def __post_init__(self) -> None:
        for stage, (allowed, required) in FIELDS.items():
            validate_template(stage, getattr(self, stage), allowed, required)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> PromptSet:
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise TemplateError(
                f"unknown template name(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(FIELDS)}"
            )
        return cls(**data)


def validate_template(
    stage: str, template: str, allowed: frozenset[str], required: frozenset[str]
) -> None:
    """Raise TemplateError naming the stage and the offending fields."""
    try:
        used = template_fields(template)
    except ValueError as exc:  # unbalanced braces
        raise TemplateError(
            f"template '{stage}' does not parse ({exc}); write literal braces as {{{{ and }}}}"
        ) from None
    unknown = used - allowed
    if unknown:
        # A JSON example in a template ({"answer": 42}) reads as a variable named "answer".
        literal = ("; for literal braces (JSON, sets, code) write {{ and }}, e.g. "
                   '{{"answer": 42}}' if any(not n.isidentifier() for n in unknown) else "")
        raise TemplateError(
            f"template '{stage}' uses unknown variable(s) {_braced(unknown)}; "
            f"it may use {_braced(allowed) or 'no variables'}{literal}"
        )
    missing = required - used
    if missing:
        raise TemplateError(f"template '{stage}' must use {_braced(missing)}")


def _braced(names: set[str] | frozenset[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


# A code task's answer is a program: the built-in templates ask for one, in a fence.
CODE_SYSTEM = (
    "You are a careful Python programmer. Think about the edge cases, then write the "
    "complete function in one ```python code block."
)
CODE_DRAFT = "Complete the following Python function.\n\n{question}"


def code_prompts(prompts: PromptSet) -> PromptSet:
    """The templates of a code run: the built-in system and draft templates become the code
    ones; edited templates are kept as they are."""
    default = PromptSet()
    return replace(
        prompts,
        system=CODE_SYSTEM if prompts.system == default.system else prompts.system,
        draft=CODE_DRAFT if prompts.draft == default.draft else prompts.draft)
