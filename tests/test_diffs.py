"""Word diffs, their HTML rendering (always escaped) and which nodes get compared."""

import random
import re
from html.parser import HTMLParser

import pytest
from conftest import run_fake

from pdr_core.config import RunConfig
from pdr_core.render import diffs
from pdr_core.render.diffs import (
    DiffOp,
    diff_html,
    diff_stats,
    next_workspace,
    predecessor,
    predecessor_title,
    word_diff,
)
from pdr_core.render.report import render_report


def rebuilt(ops):
    old = "".join(op.text for op in ops if op.kind != "insert")
    new = "".join(op.text for op in ops if op.kind != "delete")
    return old, new


class Collector(HTMLParser):
    """Every tag and attribute in a fragment, and its text as a browser would show it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.attrs = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment):
    collector = Collector()
    collector.feed(fragment)
    collector.close()
    return collector


# --- ops ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "the cat sat",
            "the dog sat",
            [("equal", "the "), ("delete", "cat"), ("insert", "dog"), ("equal", " sat")],
        ),
        ("a b", "a b c", [("equal", "a b"), ("insert", " c")]),
        ("a b c", "a c", [("equal", "a "), ("delete", "b "), ("equal", "c")]),
        ("", "new words", [("insert", "new words")]),
        ("old words", "", [("delete", "old words")]),
        ("", "", []),
        # Whitespace is a token of its own: a line break becoming a space is a change.
        ("x\ny", "x y", [("equal", "x"), ("delete", "\n"), ("insert", " "), ("equal", "y")]),
    ],
)
def test_word_diff_ops_on_small_cases(old, new, expected):
    assert word_diff(old, new) == [DiffOp(kind, text) for kind, text in expected]


def test_identical_texts_are_all_equal():
    text = "Step 1: restate.\n\nStep 2:  compute \\boxed{52}.\n"
    ops = word_diff(text, text)
    assert ops == [DiffOp("equal", text)]
    assert diff_stats(text, text) == (0, 0)
    fragment = diff_html(text, text)
    assert "<ins" not in fragment and "<del" not in fragment


def test_ops_rebuild_both_texts_and_alternate_kinds():
    rng = random.Random(7)
    vocab = ["the", "a", "=", "x", "is", "52", "step", "\\boxed{52}", "so"]
    for _ in range(50):
        old = "".join(rng.choice(vocab) + rng.choice([" ", "  ", "\n"]) for _ in range(40))
        new = "".join(rng.choice(vocab) + rng.choice([" ", "\n"]) for _ in range(35))
        ops = word_diff(old, new)
        assert rebuilt(ops) == (old, new)
        assert all(op.text for op in ops)
        assert all(a.kind != b.kind for a, b in zip(ops, ops[1:], strict=False))


def test_large_texts_take_the_anchored_path_and_stay_exact():
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(1500)]
    words = rng.choices(vocab, weights=[1 / (i + 1) for i in range(1500)], k=10_000)
    edited = list(words)
    for _ in range(200):
        edited[rng.randrange(len(edited))] = "CHANGED"
    old, new = " ".join(words), " ".join(edited)
    assert 10_000 * 10_000 > diffs._PLAIN_LIMIT  # this case exercises the anchored path
    ops = word_diff(old, new)
    assert rebuilt(ops) == (old, new)
    added, removed = diff_stats(old, new)
    changed = sum(1 for a, b in zip(words, edited, strict=True) if a != b)
    assert added == removed == changed


def test_diff_stats_counts_words_not_whitespace():
    assert diff_stats("one two three", "one 2 three four") == (2, 1)
    assert diff_stats("a b", "a\n\nb") == (0, 0)


# --- HTML -----------------------------------------------------------------------------------


def test_insertions_and_deletions_are_marked_with_inline_styles():
    fragment = diff_html("the cat sat", "the dog sat")
    assert re.search(r"<del style=\"[^\"]*line-through[^\"]*\">cat</del>", fragment)
    assert re.search(r"<ins style=\"[^\"]*background[^\"]*\">dog</ins>", fragment)
    assert fragment.startswith("<div") and "white-space:pre-wrap" in fragment
    assert "<style" not in fragment and "<link" not in fragment


def test_long_unchanged_text_is_folded_with_context_each_side():
    common = " ".join(f"w{i}" for i in range(100))
    fragment = diff_html(common + " old", common + " new", context_words=5)
    assert "<details" in fragment and "<summary" in fragment
    assert "… 90 unchanged words …" in fragment
    head, _, rest = fragment.partition("<details")
    assert "w0 w1 w2 w3 w4" in head and "w5" not in head
    folded, _, tail = rest.partition("</details>")
    assert "w5 " in folded and "w94" in folded and "w95" not in folded
    assert "w95 w96 w97 w98 w99" in tail
    # Everything is still there for a reader who unfolds it.
    assert "".join(parse(fragment).text).replace("… 90 unchanged words …", "") == (
        common + " oldnew"
    )


def test_short_unchanged_text_is_not_folded():
    common = " ".join(f"w{i}" for i in range(10))
    assert "<details" not in diff_html(common + " a", common + " b", context_words=5)


def test_negative_context_is_refused():
    with pytest.raises(ValueError, match="context_words"):
        diff_html("a", "b", context_words=-1)


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    "</div><iframe src=//evil></iframe>",
    "&lt;already escaped&gt; & <b>bold</b>",
]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("where", ["old", "new", "both", "folded"])
def test_hostile_text_comes_out_inert(hostile, where):
    filler = " ".join(f"w{i}" for i in range(80))
    if where == "old":
        old, new = f"start {hostile} end", "start end"
    elif where == "new":
        old, new = "start end", f"start {hostile} end"
    elif where == "both":
        old, new = f"{hostile} x", f"{hostile} y"
    else:
        old, new = f"{filler} {hostile} {filler} x", f"{filler} {hostile} {filler} y"
    fragment = diff_html(old, new, context_words=3)
    lowered = fragment.lower()
    for tag in ("<script", "<img", "<a ", "<iframe", "<b>"):
        assert tag not in lowered
    parsed = parse(fragment)
    assert set(parsed.tags) <= {"div", "ins", "del", "details", "summary"}
    assert set(parsed.attrs) <= {"style", "class"}
    # The reader sees the hostile text literally.
    assert hostile in "".join(parsed.text)


# --- predecessor / next_workspace -----------------------------------------------------------


def test_predecessor_and_next_workspace_on_pdr_per_sample():
    trace = run_fake(
        RunConfig(method="pdr", depth=3, width_schedule=(4, 2, 1), distill="per-sample-topk", k=2)
    )
    ids = {n.id for n in trace.nodes}
    assert {"r1-distill-0", "r1-distill-1", "r2-distill-0"} <= ids
    assert predecessor(trace, "r1-draft-2") is None
    # round 1 (4) is wider than round 2 (2): a refinement is diffed against its workspace
    assert predecessor(trace, "r2-refine-1") == "r1-distill-1"
    # round 2 is wider than round 3: the final is diffed against the workspace it was given
    assert predecessor(trace, "r3-final-0") == "r2-distill-0"
    assert predecessor(trace, "r1-distill-1") is None
    assert predecessor(trace, "r2-distill-0") == "r1-distill-0"
    assert next_workspace(trace, "r1-distill-0") == "r2-distill-0"
    assert next_workspace(trace, "r1-distill-1") is None
    assert next_workspace(trace, "r2-distill-0") is None
    assert next_workspace(trace, "r2-refine-0") is None
    assert predecessor(trace, "no-such-node") is None


def test_predecessor_falls_back_to_branch_zero_of_a_narrower_round():
    trace = run_fake(RunConfig(method="pdr", depth=3, width_schedule=(2, 4, 1)))
    assert predecessor(trace, "r2-refine-1") == "r1-draft-1"
    assert predecessor(trace, "r2-refine-3") == "r1-draft-0"
    assert predecessor(trace, "r2-distill-0") == "r1-distill-0"


def test_the_final_node_is_diffed_against_its_workspace_not_a_draft():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=2))
    [workspace] = trace.node("r2-final-0").parent_ids
    assert trace.node(workspace).stage == "distill"
    assert predecessor(trace, "r2-final-0") == workspace
    assert predecessor_title(trace, "r2-final-0", workspace) == "the workspace it was given"
    assert predecessor_title(trace, "r2-final-0", "r1-draft-0") == "previous round"
    report = render_report(trace)
    assert 'Changes from <a href="#n' in report and "(the workspace it was given)" in report


def test_predecessor_on_sr():
    trace = run_fake(RunConfig(method="sr", depth=3, sr_summary=True))
    assert predecessor(trace, "r1-draft-0") is None
    assert predecessor(trace, "r2-refine-0") == "r1-draft-0"
    assert predecessor(trace, "r3-final-0") == "r2-refine-0"
    assert predecessor(trace, "r2-distill-0") == "r1-distill-0"
    assert next_workspace(trace, "r1-distill-0") == "r2-distill-0"
    # Diffing a refinement against its predecessor shows what the round changed.
    before = trace.node(predecessor(trace, "r2-refine-0")).text
    after = trace.node("r2-refine-0").text
    assert sum(diff_stats(before, after)) > 0


def test_any_answer_bearing_stage_is_diffed_against_the_previous_round():
    rsa = run_fake(RunConfig(method="rsa", width=3, k=2, depth=2))
    assert predecessor(rsa, "r2-aggregate-1") == "r1-draft-1"
    assert predecessor(rsa, "r3-aggregate-2") == "r2-aggregate-2"
    moa = run_fake(RunConfig(method="moa", method_settings={"proposers": "a,b", "layers": 2}))
    assert predecessor(moa, "r2-propose-1") == "r1-draft-1"
    assert predecessor(moa, "r3-final-0") == "r2-propose-0"
    # a judge names a candidate: it is not a generation to compare with one
    tour = run_fake(RunConfig(method="tournament", width=4, group=2))
    judge = next(n.id for n in tour.nodes if n.stage == "judge")
    assert predecessor(tour, judge) is None
