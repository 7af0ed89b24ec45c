"""Word-level diffs between generations, rendered as escaped HTML fragments.

Every piece of text in `diff_html` output passes through `html.escape`: model output is
hostile by default and must come out as inert text, never markup.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher, unified_diff

from pdr_core.trace import Node, Trace, gives_answer

_TOKEN_RE = re.compile(r"\s+|[^\s]+")
_WORD_RE = re.compile(r"\S+")

# Above this many word pairs, SequenceMatcher alone turns quadratic on common words, so the
# texts are first cut at words unique to both (patience anchors) and matched gap by gap.
_PLAIN_LIMIT = 2_000_000



def has_answer(node: Node) -> bool:
    """A generation: its stage answers the question (any stage a method names that is not
    one of the answerless ones, pdr_core.trace.ANSWERLESS_STAGES), or it carries an
    extracted answer. Workspaces, choices and scores are compared otherwise."""
    return gives_answer(node.stage) or node.answer is not None

_WRAPPER_STYLE = "white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.5"
_INS_STYLE = "background:#d1fae5;color:#064e3b;text-decoration:none"
_DEL_STYLE = "background:#fee2e2;color:#7f1d1d;text-decoration:line-through"
_DETAILS_STYLE = "display:inline"
_SUMMARY_STYLE = (
    "display:inline;cursor:pointer;color:#6b7280;font-style:italic;background:#f3f4f6"
)


@dataclass(frozen=True)
class DiffOp:
    """One stretch of a diff: `kind` is equal, insert or delete; `text` is raw (unescaped)."""

    kind: str
    text: str


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _lis_anchors(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest subsequence of `pairs` (sorted by first index) increasing in the second."""
    tails: list[int] = []  # tails[k]: second index ending the best chain of length k+1
    tail_at: list[int] = []  # position in `pairs` of that chain end
    back: list[int] = []
    for pos, (_, j) in enumerate(pairs):
        k = bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(pos)
        else:
            tails[k] = j
            tail_at[k] = pos
        back.append(tail_at[k - 1] if k else -1)
    chain = []
    pos = tail_at[-1] if tail_at else -1
    while pos >= 0:
        chain.append(pairs[pos])
        pos = back[pos]
    return chain[::-1]


def _matching_blocks(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    """(i, j, n): a[i:i+n] == b[j:j+n], increasing in i and j, adjacent blocks merged."""
    if len(a) * len(b) <= _PLAIN_LIMIT:
        raw = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()[:-1]
        return [(m.a, m.b, m.size) for m in raw]
    count_a, count_b = Counter(a), Counter(b)
    where_b = {w: j for j, w in enumerate(b) if count_b[w] == 1}
    pairs = [(i, where_b[w]) for i, w in enumerate(a) if count_a[w] == 1 and w in where_b]
    blocks: list[tuple[int, int, int]] = []
    prev_i = prev_j = 0
    for i, j in [*_lis_anchors(pairs), (len(a), len(b))]:
        if i > prev_i and j > prev_j:
            matcher = SequenceMatcher(None, a[prev_i:i], b[prev_j:j], autojunk=False)
            blocks.extend(
                (prev_i + m.a, prev_j + m.b, m.size) for m in matcher.get_matching_blocks()[:-1]
            )
        if i < len(a):
            blocks.append((i, j, 1))
        prev_i, prev_j = i + 1, j + 1
    merged: list[tuple[int, int, int]] = []
    for i, j, n in blocks:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            mi, mj, mn = merged.pop()
            merged.append((mi, mj, mn + n))
        else:
            merged.append((i, j, n))
    return merged


def _token_blocks(ta: list[str], tb: list[str]) -> list[tuple[int, int, int]]:
    """Token-level matches: words matched on their own, then the whitespace between them
    kept in a match only where both sides have the same whitespace."""
    pa = [k for k, t in enumerate(ta) if not t[0].isspace()]
    pb = [k for k, t in enumerate(tb) if not t[0].isspace()]
    words_a = [ta[k] for k in pa]
    words_b = [tb[k] for k in pb]
    out: list[tuple[int, int, int]] = []
    end_a = end_b = 0  # tokens before these are already matched or passed

    def add(i: int, j: int, n: int) -> None:
        nonlocal end_a, end_b
        # Equal whitespace just before the run belongs to it (e.g. a leading indent).
        if i > end_a and j > end_b and ta[i - 1] == tb[j - 1] and ta[i - 1][0].isspace():
            i, j, n = i - 1, j - 1, n + 1
        out.append((i, j, n))
        end_a, end_b = i + n, j + n

    for wi, wj, wn in _matching_blocks(words_a, words_b):
        start_a, start_b = pa[wi], pb[wj]
        for t in range(1, wn):
            # Exactly one whitespace token separates consecutive words.
            if ta[pa[wi + t] - 1] != tb[pb[wj + t] - 1]:
                add(start_a, start_b, pa[wi + t - 1] + 1 - start_a)
                start_a, start_b = pa[wi + t], pb[wj + t]
        last_a, last_b = pa[wi + wn - 1] + 1, pb[wj + wn - 1] + 1
        if last_a < len(ta) and last_b < len(tb) and ta[last_a] == tb[last_b]:
            last_a, last_b = last_a + 1, last_b + 1  # the same trailing whitespace
        add(start_a, start_b, last_a - start_a)
    return out


def word_diff(old: str, new: str) -> list[DiffOp]:
    """Ops turning `old` into `new`, over word and whitespace tokens.

    Joining the equal and delete texts gives `old`; the equal and insert texts give `new`.
    Within a changed stretch the deletion comes before the insertion.
    """
    ta, tb = _tokens(old), _tokens(new)
    ops: list[DiffOp] = []

    def emit(kind: str, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if ops and ops[-1].kind == kind:
            ops[-1] = DiffOp(kind, ops[-1].text + text)
        else:
            ops.append(DiffOp(kind, text))

    i = j = 0
    for mi, mj, n in [*_token_blocks(ta, tb), (len(ta), len(tb), 0)]:
        emit("delete", ta[i:mi])
        emit("insert", tb[j:mj])
        emit("equal", ta[mi : mi + n])
        i, j = mi + n, mj + n
    return ops


def diff_stats(old: str, new: str) -> tuple[int, int]:
    """(added words, removed words) between `old` and `new`."""
    added = removed = 0
    for op in word_diff(old, new):
        if op.kind == "insert":
            added += len(_WORD_RE.findall(op.text))
        elif op.kind == "delete":
            removed += len(_WORD_RE.findall(op.text))
    return added, removed


def _fold_equal(text: str, context_words: int) -> str:
    """An unchanged stretch, escaped, with its middle folded when it is long."""
    tokens = _tokens(text)
    word_positions = [k for k, t in enumerate(tokens) if not t[0].isspace()]
    words = len(word_positions)
    if words <= 2 * context_words:
        return html.escape(text)
    hidden = words - 2 * context_words
    # The head ends after its last word (and that word's whitespace); the tail starts at
    # its first word, so the fold holds whole words.
    head_end = word_positions[context_words - 1] + 2 if context_words else 0
    tail_start = word_positions[-context_words] if context_words else len(tokens)
    head_end = min(head_end, tail_start)
    head = "".join(tokens[:head_end])
    middle = "".join(tokens[head_end:tail_start])
    tail = "".join(tokens[tail_start:])
    label = f"… {hidden} unchanged word{'s' if hidden != 1 else ''} …"
    return (
        f"{html.escape(head)}"
        f'<details style="{_DETAILS_STYLE}"><summary style="{_SUMMARY_STYLE}">'
        f"{html.escape(label)}</summary>{html.escape(middle)}</details>"
        f"{html.escape(tail)}"
    )


def diff_html(old: str, new: str, context_words: int = 30) -> str:
    """A self-contained HTML fragment of the word diff from `old` to `new`.

    Insertions are green `<ins>`, deletions red struck `<del>`; unchanged stretches longer
    than 2*context_words are folded into a `<details>` showing `context_words` each side.
    Styles are inline so the fragment also works in a standalone report.
    """
    if context_words < 0:
        raise ValueError(f"context_words={context_words} is invalid: 0 or more")
    parts = [f'<div class="pdr-diff" style="{_WRAPPER_STYLE}">']
    for op in word_diff(old, new):
        if op.kind == "equal":
            parts.append(_fold_equal(op.text, context_words))
        elif op.kind == "insert":
            parts.append(f'<ins style="{_INS_STYLE}">{html.escape(op.text)}</ins>')
        else:
            parts.append(f'<del style="{_DEL_STYLE}">{html.escape(op.text)}</del>')
    parts.append("</div>")
    return "".join(parts)


# --- which node a node is compared with -----------------------------------------------------


def _find(trace: Trace, node_id: str) -> Node | None:
    return next((n for n in trace.nodes if n.id == node_id), None)


def _generation(trace: Trace, round_: int, branch: int) -> Node | None:
    return next(
        (
            n
            for n in trace.nodes
            if n.round == round_ and n.branch == branch and has_answer(n)
        ),
        None,
    )


def _distill(trace: Trace, round_: int, branch: int) -> Node | None:
    return next(
        (
            n
            for n in trace.nodes
            if n.stage == "distill" and n.round == round_ and n.branch == branch
        ),
        None,
    )


def predecessor(trace: Trace, node_id: str) -> str | None:
    """The node that `node_id` is best diffed against, or None.

    A generation after round 1 (refine, final, aggregate, propose, a plugin's stage): the
    same-branch generation of the previous round, or branch 0
    of it when the previous round is narrower. When the previous round is wider, none of
    its generations is this node's own: it is diffed against the workspace it was given
    (its distill parent). A distill node: the same-branch distill node of the previous
    round. Drafts, and ids not in the trace, have none.
    """
    node = _find(trace, node_id)
    if node is None or node.round <= 1:
        return None
    if has_answer(node) and node.stage != "distill":
        workspace = [p for p in node.parent_ids if (parent := _find(trace, p)) is not None
                     and parent.stage == "distill"]
        if workspace and _width(trace, node.round - 1) > _width(trace, node.round):
            return workspace[0]
        previous = _generation(trace, node.round - 1, node.branch)
        if previous is None:
            previous = _generation(trace, node.round - 1, 0)
    elif node.stage == "distill":
        previous = _distill(trace, node.round - 1, node.branch)
    else:
        previous = None
    return previous.id if previous is not None else None


def predecessor_title(trace: Trace, node_id: str, other_id: str) -> str:
    """What the predecessor `other_id` is to `node_id`, for a diff's title."""
    if _find(trace, other_id).stage == "distill" and _find(trace, node_id).stage != "distill":
        return "the workspace it was given"
    return "previous round"


def _width(trace: Trace, round_: int) -> int:
    return sum(1 for n in trace.nodes if n.round == round_ and has_answer(n))


def is_program(trace: Trace, node: Node) -> bool:
    """Whether the node's answer is a program (a code run's generation with one): two
    programs are diffed line by line, any other pair of texts word by word."""
    return trace.task is not None and node.stage != "distill" and node.answer is not None


def line_diff(old: str, new: str) -> tuple[list[str], int, int]:
    """The unified diff of two programs, line by line, after its two header lines; with
    the number of lines added and removed."""
    lines = list(unified_diff(old.splitlines(), new.splitlines(), lineterm=""))[2:]
    added = sum(1 for line in lines if line.startswith("+"))
    removed = sum(1 for line in lines if line.startswith("-"))
    return lines, added, removed


def next_workspace(trace: Trace, node_id: str) -> str | None:
    """For a distill node, the same-branch distill node of the next round, if any."""
    node = _find(trace, node_id)
    if node is None or node.stage != "distill":
        return None
    following = _distill(trace, node.round + 1, node.branch)
    return following.id if following is not None else None
