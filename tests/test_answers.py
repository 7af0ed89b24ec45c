"""Tests for pdr_core.answers: extraction from model text, normalisation, voting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pdr_core import extraction
from pdr_core.answer_forms import normalize_answer
from pdr_core.answers import answer_clusters, answers_equal, is_correct, majority_vote
from pdr_core.extraction import RULES, Found, extract_answer, find_answer, no_answer_reason

# --- extraction ---------------------------------------------------------------------------

# (id, model output, expected extracted answer). Written the way small instruct models
# actually answer: chain of thought, LaTeX, markdown, and the odd mistake.
EXTRACTION_CASES: list[tuple[str, str, str | None]] = [
    (
        "simple_boxed",
        "We add the numbers: $3 + 4 = 7$.\n\nTherefore the answer is $\\boxed{7}$.",
        "7",
    ),
    (
        "boxed_frac_nested_braces",
        "Let $p$ be the probability of heads.\nSince the coin is fair, $p = \\frac{1}{2}$.\n"
        "So the answer is $\\boxed{\\frac{1}{2}}$.",
        "\\frac{1}{2}",
    ),
    (
        "boxed_frac_sqrt_deeply_nested",
        "Using the unit circle, $\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$.\n\n"
        "**Final Answer**\n\n$$\\boxed{\\frac{\\sqrt{3}}{2}}$$",
        "\\frac{\\sqrt{3}}{2}",
    ),
    (
        "last_of_several_boxed_wins",
        "First I got $\\boxed{12}$, but I forgot to subtract the overlap.\n"
        "Correcting: $12 - 3 = 9$.\n\nThe answer is $\\boxed{9}$.",
        "9",
    ),
    (
        "three_boxed_last_wins",
        "Case 1: $\\boxed{2}$. Case 2: $\\boxed{5}$.\nCombining both cases the total is "
        "$\\boxed{7}$.",
        "7",
    ),
    (
        "answer_line_after_boxed",
        "Step 1: $6 \\times 7 = 42$, so I first wrote $\\boxed{42}$.\n"
        "Step 2: wait, we need half of that.\n\nAnswer: 21",
        "21",
    ),
    (
        "bold_answer_line_after_boxed",
        "The perimeter is $\\boxed{20}$ cm... no, each side is 6, so $4 \\cdot 6 = 24$.\n\n"
        "**Answer:** 24",
        "24",
    ),
    (
        "boxed_after_answer_line",
        "Answer: 10\n\nHmm, let me double check. $2^3 + 3 = 11$.\n"
        "So the correct value is $\\boxed{11}$.",
        "11",
    ),
    ("plain_answer_line", "The train travels 60 miles per hour for 2 hours.\nAnswer: 120", "120"),
    ("upper_answer_line", "Multiply 8 by 9 to get 72.\nANSWER: 72", "72"),
    ("answer_line_with_dollars", "Total cost is the sum of the items.\nAnswer: $15$", "15"),
    ("answer_line_trailing_period", "Adding them up gives forty.\nAnswer: 40.", "40"),
    (
        "bold_answer_with_math",
        "### Solution\n1. Factor: $x^2 - 5x + 6 = (x-2)(x-3)$.\n2. Roots: $x = 2, 3$.\n\n"
        "**Answer:** $x = 2, 3$",
        "x = 2, 3",
    ),
    ("bold_answer_bold_value", "So she has 14 apples left.\n\n**Answer: 14**", "14"),
    (
        "bold_word_then_colon",
        "Subtracting, $50 - 18 = 32$.\n\n**Answer**: 32",
        "32",
    ),
    (
        "final_answer_colon_line",
        "The area of the triangle is $\\frac{1}{2} \\cdot 6 \\cdot 4 = 12$.\n\nFinal Answer: 12",
        "12",
    ),
    (
        "markdown_heading_final_answer",
        "We compute the sum term by term.\n\n## Final Answer: $55$",
        "55",
    ),
    (
        "minerva_format",
        "The slope is $\\frac{4-2}{3-1} = 1$.\n"
        "Final Answer: The final answer is $1$. I hope it is correct.",
        "1",
    ),
    ("final_answer_is_plain", "After simplifying, the final answer is 256.", "256"),
    ("final_answer_is_bold", "Thus, my final answer is **17**.", "17"),
    ("final_answer_case_insensitive", "THE FINAL ANSWER IS 3", "3"),
    (
        "final_answer_is_boxed",
        "Putting it together, the final answer is $\\boxed{64}$.",
        "64",
    ),
    (
        "final_answer_is_decimal_then_sentence",
        "The mean is 3.5 because the sum is 21 over 6 values.\n"
        "The final answer is 3.5. This matches the estimate.",
        "3.5",
    ),
    (
        "negative_boxed",
        "The vertex of $y = x^2 + 4x$ is at $x = -2$, where $y = 4 - 8 = -4$.\n"
        "The minimum value is $\\boxed{-4}$.",
        "-4",
    ),
    ("negative_answer_line", "The temperature dropped 15 degrees from 3.\nAnswer: -12", "-12"),
    (
        "thousands_separator",
        "There are $10 \\times 100 = 1000$ pages in total.\n\nThe answer is $\\boxed{1,000}$.",
        "1,000",
    ),
    (
        "escaped_dollar_money",
        "Each notebook costs \\$1.10 and she buys 5, so she pays \\$5.50.\n\nAnswer: \\$5.50",
        "\\$5.50",
    ),
    (
        "boxed_money",
        "He earns $8 \\times 12 = 96$ dollars.\n\nThe answer is $\\boxed{\\$96}$.",
        "\\$96",
    ),
    (
        "multiple_choice_letter",
        "Option (A) is too small and (C) ignores the units.\nTherefore the answer is (B).\n\n"
        "Answer: (B)",
        "(B)",
    ),
    (
        "multiple_choice_boxed_text",
        "Only choice B satisfies both inequalities.\n\n$\\boxed{\\text{(B)}}$",
        "\\text{(B)}",
    ),
    (
        "text_answer_yes",
        "Since 91 = 7 * 13, 91 is not prime... the question asks if it is composite.\nAnswer: Yes",
        "Yes",
    ),
    (
        "no_answer_at_all",
        "Let me think about this problem.\nWe need to find the number of ways to arrange the "
        "letters.\nThere are 5 letters, two of which are the same.",
        None,
    ),
    ("empty_output", "", None),
    ("whitespace_only_output", "   \n\n\t  ", None),
    (
        "truncated_mid_boxed",
        "We have $a + b = 10$ and $a - b = 4$, so $a = 7$.\nTherefore the answer is "
        "$\\boxed{\\frac{7",
        None,
    ),
    (
        "truncated_mid_boxed_keeps_earlier_answer",
        "Initial estimate: $\\boxed{30}$.\nRefining with the second constraint, the answer "
        "becomes $\\boxed{3",
        "30",
    ),
    (
        "truncated_answer_line_with_open_box",
        "Answer: 5\n\nActually, recomputing carefully.\nAnswer: $\\boxed{",
        "5",
    ),
    ("empty_boxed_only", "Put your answer in \\boxed{}.", None),
    (
        "prompt_echo_empty_boxed_then_answer",
        "I will put the final answer in \\boxed{} as requested.\n$2 + 2 = 4$\nAnswer: 4",
        "4",
    ),
    ("fbox", "The remainder is \\fbox{3} when dividing by 5.", "3"),
    (
        "boxed_with_spaces_inside",
        "Simplifying gives $\\boxed{ 2\\sqrt{2} }$.",
        "2\\sqrt{2}",
    ),
    (
        "boxed_interval",
        "The inequality holds for $x \\in \\boxed{\\left( -\\infty, 3 \\right]}$.",
        "\\left( -\\infty, 3 \\right]",
    ),
    (
        "boxed_set_with_escaped_braces",
        "The solution set is $\\boxed{\\{1, 2\\}}$.",
        "\\{1, 2\\}",
    ),
    (
        "boxed_tuple",
        "The intersection point is $\\boxed{(2, -1)}$.",
        "(2, -1)",
    ),
    (
        "boxed_with_units_text",
        "The rectangle's area is $\\boxed{24 \\text{ cm}^2}$.",
        "24 \\text{ cm}^2",
    ),
    (
        "answer_on_next_line",
        "Counting the cases gives 6 + 4.\n\nAnswer:\n\n$10$",
        "10",
    ),
    (
        "answer_word_mid_sentence_ignored",
        "Let me double-check my answer: it seems plausible but I am not sure yet.",
        None,
    ),
    (
        "draft_header_not_an_answer",
        "### Attempt 1 (answer: 12)\nThe attempts disagree; more work is needed.",
        None,
    ),
    (
        "boxed_inside_display_math_with_period",
        "Hence\n\\[\n\\boxed{x = 5}.\n\\]",
        "x = 5",
    ),
    (
        "windows_line_endings",
        "Step 1: 9 - 4 = 5\r\nAnswer: 5\r\n",
        "5",
    ),
    (
        "cjk_fullwidth_colon",
        "计算得 7。\nAnswer\uff1a7",
        "7",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in EXTRACTION_CASES],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extraction_table_is_large_enough() -> None:
    assert len(EXTRACTION_CASES) >= 45
    assert len({name for name, _, _ in EXTRACTION_CASES}) == len(EXTRACTION_CASES)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\x00", id="nul"),
        pytest.param("\\boxed{\x00}\x00Answer:\x00", id="nul_mixed"),
        pytest.param("\\boxed{{{", id="unbalanced_boxed"),
        pytest.param("}}}\\boxed}{", id="closing_first"),
        pytest.param("\\", id="lone_backslash"),
        pytest.param("\\boxed", id="boxed_without_brace"),
        pytest.param("\\boxed{\\}", id="escaped_close_only"),
        pytest.param("Answer:", id="answer_colon_only"),
        pytest.param("final answer is", id="final_answer_is_only"),
        pytest.param("final answer is $", id="final_answer_lone_dollar"),
        pytest.param("$$$$**..**$$", id="only_delimiters"),
        pytest.param("\ud800", id="lone_surrogate"),
    ],
)
def test_extract_answer_odd_input_gives_none(text: str) -> None:
    assert extract_answer(text) is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{" * 1_000_000, id="mb_of_open_braces"),
        pytest.param("}" * 1_000_000, id="mb_of_close_braces"),
        pytest.param("\\boxed{" * 150_000, id="many_unclosed_boxed"),
        pytest.param("\\boxed{" * 100_000 + "}" * 100_000, id="deeply_nested_empty_boxed"),
        pytest.param("final answer is " * 60_000, id="one_line_of_final_answer_is"),
        pytest.param("Answer:\n" * 120_000, id="many_empty_answer_lines"),
        pytest.param("Answer: " + "*" * 1_000_000, id="mb_of_stars"),
        pytest.param("\\" * 1_000_000, id="mb_of_backslashes"),
        pytest.param("\x00" * 1_000_000, id="mb_of_nul"),
        pytest.param("So, the answer is " * 100_000, id="mb_of_the_answer_is"),
        pytest.param("=" * 1_000_000, id="mb_of_equals_signs"),
        pytest.param("x ** " * 200_000, id="mb_of_bold_markers"),
    ],
)
def test_extract_answer_huge_pathological_input_is_fast(text: str) -> None:
    # A quadratic scan of a megabyte takes minutes; a linear one well under a second.
    started = time.perf_counter()
    assert extract_answer(text) is None
    normalize_answer(text)
    assert time.perf_counter() - started < 5.0


def test_extract_answer_ignores_nul_around_answer() -> None:
    assert extract_answer("\x00\x00\nAnswer: 5\x00\n") == "5"
    assert extract_answer("\\boxed{\x00-3\x00}") == "-3"
    assert normalize_answer("\x001,000\x00") == "1000"


def test_extract_answer_finds_answer_after_huge_noise() -> None:
    text = "{" * 500_000 + "\n\\boxed{\\frac{1}{2}}" + " filler" * 50_000
    assert extract_answer(text) == "\\frac{1}{2}"


def test_extract_answer_deeply_nested_boxes_take_innermost() -> None:
    text = "\\boxed{" * 1000 + "5" + "}" * 1000
    assert extract_answer(text) == "5"


# --- the weaker phrasings a small model writes, and their precedence -----------------------

# (id, model output, answer, rule that found it)
PHRASING_CASES: list[tuple[str, str, str, str]] = [
    ("the_answer_is", "17 times 3 is 51, plus 1 is 52.\nSo, the answer is 19.", "19",
     "the answer is"),
    ("the_answer_is_colon_math", "Halving it:\nThe answer is: $\\frac{1}{2}$.", "\\frac{1}{2}",
     "the answer is"),
    ("the_correct_answer_is_with_unit", "So the correct answer is 52 apples in total.", "52",
     "the answer is"),
    ("the_answer_is_negative", "The vertex is lower.\nThe answer is -4.", "-4",
     "the answer is"),
    ("the_answer_is_thousands", "Adding up, the answer is 1,000, as expected.", "1,000",
     "the answer is"),
    ("the_answer_is_latex_no_spaces", "Hence the answer is 2\\sqrt{3}.", "2\\sqrt{3}",
     "the answer is"),
    ("the_answer_is_assignment", "Solving, the answer is x = 7", "7", "the answer is"),
    ("the_answer_is_tuple", "They meet once: the answer is (2, -1).", "(2, -1)",
     "the answer is"),
    ("the_answer_is_choice", "Only one fits, so the answer is (B).", "(B)", "the answer is"),
    ("the_answer_is_bold", "I think the answer is **12**. Let me know.", "12",
     "the answer is"),
    ("the_answer_is_equation_chain", "So, the answer is x = 3*7 + 7 = 28.", "28",
     "the answer is"),
    ("the_solution_to_the_problem_is", "Adding the parts.\nSo, the solution to the problem is 33.",
     "33", "the answer is"),
    ("later_answer_is_wins", "At first the answer is 10?\nNo: the answer is 11.", "11",
     "the answer is"),
    ("bold_on_last_line", "Each box has 7.\nSo she has **14** apples.", "14",
     "bold on the last line"),
    ("bold_math_on_last_line", "Adding the parts together.\nTotal: **$52$**", "52",
     "bold on the last line"),
    ("equals_on_last_line", "First multiply, then add.\n17 * 3 + 1 = 52", "52",
     "= on the last line"),
    ("equals_in_math_on_last_line", "We get $17 \\times 3 + 1 = 52$.", "52",
     "= on the last line"),
    ("equals_arithmetic_taken_whole", "Rewriting it, 23 = 17 + 1.", "17 + 1",
     "= on the last line"),
    ("equals_after_comparison", "Check: 3 <= 4 holds, and x = 5.", "5", "= on the last line"),
    ("boxed_beats_answer_is", "The answer is 19.\nCorrection: $\\boxed{20}$", "20", "boxed"),
    ("boxed_before_beats_answer_is_after", "$\\boxed{20}$, so the answer is 19.", "20",
     "boxed"),
    ("answer_line_beats_answer_is", "Answer: 5\nthe answer is 6, I think", "5", "answer line"),
    ("answer_is_beats_bold", "The answer is 8.\nSo there are **9** left.", "8", "the answer is"),
    ("answer_is_beats_equals", "So, the answer is 19.\nCheck: 19 * 2 = 38", "19",
     "the answer is"),
    ("bold_beats_equals", "So 6 = 6 and **6** it is", "6", "bold on the last line"),
]


@pytest.mark.parametrize(
    ("text", "answer", "rule"),
    [pytest.param(text, answer, rule, id=name) for name, text, answer, rule in PHRASING_CASES],
)
def test_each_phrasing_and_its_precedence(text: str, answer: str, rule: str) -> None:
    assert find_answer(text) == Found(answer, rule)
    assert extract_answer(text) == answer
    assert no_answer_reason(text) is None


def test_every_rule_has_a_phrasing_case() -> None:
    assert {rule for *_, rule in PHRASING_CASES} | {"final answer is"} == set(RULES)


# (id, model output, words in the reason it gives none)
REFUSED_CASES: list[tuple[str, str, str]] = [
    ("numbers_in_prose", "We have 3 apples and 4 pears, so 7 fruits? Not sure yet.",
     "numbers elsewhere in the text are not guessed from"),
    ("answer_is_then_words", "I believe the answer is that we need more information.",
     "followed by words"),
    ("answer_is_then_brackets_of_words", "The answer is (see the table) below.",
     "followed by words"),
    ("bold_heading_on_last_line", "Working it out.\n**Step 3: add the parts**",
     "none of the phrasings"),
    ("bold_value_not_on_last_line", "So she has **14** apples.\nDone, I hope that helps!",
     "none of the phrasings"),
    ("equals_not_on_last_line", "17 * 3 + 1 = 52\nThat seems right to me.",
     "none of the phrasings"),
    ("equals_then_words", "The total = the sum of both parts", "none of the phrasings"),
    ("the_result_is_not_an_answer_phrase", "First, the result is 17 then we add more",
     "none of the phrasings"),
    ("comparison_only", "Check that a <= 5 and b >= 2 and a == b", "none of the phrasings"),
    ("unclosed_box_with_answer_is", "So the answer is $\\boxed{\\frac{7", "never closed"),
    ("empty_box", "Put your answer in \\boxed{}.", "is empty"),
    ("empty_answer_line", "Let me see.\nAnswer:", "has nothing after it"),
    ("empty", "  \n", "the output is empty"),
]


@pytest.mark.parametrize(
    ("text", "reason"),
    [pytest.param(text, reason, id=name) for name, text, reason in REFUSED_CASES],
)
def test_refused_text_gives_no_answer_and_says_why(text: str, reason: str) -> None:
    assert find_answer(text) == Found(None, None)
    assert reason in no_answer_reason(text)


def test_the_reason_mentions_a_cut_off_call() -> None:
    assert no_answer_reason("Step 1: multiply 17 by", "length").endswith(
        "the call stopped at its max-tokens limit")
    assert "max-tokens" not in no_answer_reason("Step 1: multiply 17 by", "stop")


def test_the_precedence_is_documented_in_the_module_and_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for doc in (extraction.__doc__, readme):
        for rule in ("the answer is", "bold", "= X", "last non-empty line", "final answer is"):
            assert rule in doc, rule


# --- normalisation ------------------------------------------------------------------------

EQUAL_PAIRS: list[tuple[str, str]] = [
    ("1,000", "1000"),
    ("1,234,567", "1234567"),
    ("\\$1,000", "1000"),
    ("0.5", "1/2"),
    ("\\frac{1}{2}", "1/2"),
    ("\\dfrac{1}{2}", "0.5"),
    ("\\tfrac{3}{6}", "\\frac{1}{2}"),
    ("\\frac12", "\\frac{1}{2}"),
    ("2/4", "1/2"),
    ("\\frac{4}{2}", "2"),
    ("2.0", "2"),
    ("2.50", "\\frac{5}{2}"),
    ("-0", "0"),
    ("+7", "7"),
    ("007", "7"),
    ("-\\frac{3}{4}", "-0.75"),
    ("\\frac{-3}{4}", "-3/4"),
    ("50\\%", "50"),
    ("50%", "50"),
    ("30^\\circ", "30"),
    ("30^{\\circ}", "30"),
    ("45\u00b0", "45"),
    ("\\text{Yes}", "yes"),
    ("YES", "yes"),
    ("x = 5", "5"),
    ("y=-2", "-2"),
    ("\\$5.50", "5.5"),
    ("$42$", "42"),
    ("42.", "42"),
    ("1\\,000", "1000"),
    ("10\\!", "10"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("(1, 2)", "(1,2)"),
    ("\\boxed{7}", "7"),
    ("\\textbf{(B)}", "B"),
    ("(B)", "(b)"),
    ("\\sqrt3", "\\sqrt{3}"),
    ("2 \\sqrt{2}", "2\\sqrt{2}"),
    ("\u22123", "-3"),
    ("**12**", "12"),
    ("5\\text{ cm}", "5 cm"),
]

NOT_EQUAL_PAIRS: list[tuple[str, str]] = [
    ("1,2", "12"),
    ("1/2", "2"),
    ("(1, 500)", "1500"),
    ("0.333", "1/3"),
    ("-5", "5"),
    ("5 cm", "5"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{3}{2}"),
    ("(A)", "(B)"),
    ("yes", "no"),
    ("1,23", "123"),
    ("\\Delta", "\\delta"),
    ("x = 1, y = 2", "1, y = 2"),
    ("1/0", "0"),
    ("2^{10}", "210"),
    ("12%", "0.12"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL_PAIRS)
def test_answers_normalise_equal(a: str, b: str) -> None:
    assert normalize_answer(a) == normalize_answer(b)
    assert normalize_answer(a) is not None
    assert answers_equal(a, b)
    assert answers_equal(b, a)


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL_PAIRS)
def test_answers_normalise_different(a: str, b: str) -> None:
    assert normalize_answer(a) != normalize_answer(b)
    assert not answers_equal(a, b)


def test_normalisation_tables_are_large_enough() -> None:
    assert len(EQUAL_PAIRS) >= 25
    assert len(NOT_EQUAL_PAIRS) >= 10


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1,000", "1000"),
        ("\\frac{6}{8}", "3/4"),
        ("0.25", "1/4"),
        ("\\frac{10}{5}", "2"),
        ("-0.0", "0"),
        ("+3", "3"),
        ("75\\%", "75"),
        ("1,2", "1,2"),
        ("\\text{Yes}", "yes"),
        ("x = \\dfrac{1}{3}", "1/3"),
        ("\\left[ 0, 1 \\right)", "[0,1)"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}"),
        ("24 \\text{ cm}^2", "24cm^2"),
        ("\\boxed{\\text{(C)}}", "c"),
    ],
)
def test_normalize_answer_canonical_form(answer: str, expected: str) -> None:
    assert normalize_answer(answer) == expected


@pytest.mark.parametrize("answer", [None, "", "   ", "$$", "\\text{}", "\\boxed{ }", ".", "\\,"])
def test_normalize_answer_empty_is_none(answer: str | None) -> None:
    assert normalize_answer(answer) is None


@pytest.mark.parametrize(
    "answer",
    ["1,000", "\\frac{2}{4}", "x = 3", "\\left( 1, 2 \\right)", "(B)", "2\\sqrt{2}", "0.125"],
)
def test_normalize_answer_is_idempotent(answer: str) -> None:
    once = normalize_answer(answer)
    assert once is not None
    assert normalize_answer(once) == once


def test_normalize_answer_huge_number_does_not_raise() -> None:
    # `int()` refuses strings over 4300 digits; long numbers must be compared as text.
    digits = "9" * 10_000
    assert normalize_answer(digits) == digits
    assert answers_equal(digits, digits)
    assert not answers_equal(digits, digits + "9")


def test_answers_equal_needs_both_present() -> None:
    assert not answers_equal(None, None)
    assert not answers_equal("5", None)
    assert not answers_equal(None, "5")
    assert not answers_equal("", "")


# --- grading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("5", None, None),
        (None, None, None),
        (None, "5", False),
        ("5", "5", True),
        ("\\frac{1}{2}", "0.5", True),
        ("1,000", "1000", True),
        ("6", "5", False),
        ("", "5", False),
        ("\\text{Yes}", "yes", True),
    ],
)
def test_is_correct(answer: str | None, reference: str | None, expected: bool | None) -> None:
    assert is_correct(answer, reference) is expected


# --- clusters and voting ------------------------------------------------------------------


def test_answer_clusters_groups_equivalent_answers_largest_first() -> None:
    answers = ["3", "\\frac{1}{2}", None, "0.5", "3.0", "1/2", "7"]
    assert answer_clusters(answers) == [("1/2", [1, 3, 5]), ("3", [0, 4]), ("7", [6])]


def test_answer_clusters_ties_broken_by_earliest_first_index() -> None:
    answers = ["9", "4", "4", "9", "2"]
    assert answer_clusters(answers) == [("9", [0, 3]), ("4", [1, 2]), ("2", [4])]
    answers = ["4", "9", "9", "4"]
    assert answer_clusters(answers) == [("4", [0, 3]), ("9", [1, 2])]


def test_answer_clusters_excludes_missing_answers() -> None:
    assert answer_clusters([None, None]) == []
    assert answer_clusters([]) == []
    assert answer_clusters([None, "", "5", "  "]) == [("5", [2])]


def test_majority_vote_returns_original_text_of_earliest_member() -> None:
    answers = [None, "\\frac{1}{2}", "7", "0.5", "1/2"]
    assert majority_vote(answers) == ("\\frac{1}{2}", 3)


def test_majority_vote_tie_goes_to_earliest() -> None:
    assert majority_vote(["8", "6", "6", "8"]) == ("8", 2)
    assert majority_vote(["6", "8", "8", "6"]) == ("6", 2)
    assert majority_vote([None, "b", "a"]) == ("b", 1)


def test_majority_vote_clear_majority_beats_earlier_minority() -> None:
    assert majority_vote(["1", "2", "2", "x = 2"]) == ("2", 3)


def test_majority_vote_no_answers() -> None:
    assert majority_vote([None, None, None]) == (None, 0)
    assert majority_vote([]) == (None, 0)


def test_majority_vote_on_extracted_answers() -> None:
    outputs = [
        "So the answer is $\\boxed{\\dfrac{3}{4}}$.",
        "I get $\\boxed{0.75}$.",
        "The answer is $\\boxed{1}$.",
        "Thinking... I ran out of tokens before finishing the $\\boxed{",
        "Answer: 3/4",
    ]
    answers = [extract_answer(o) for o in outputs]
    assert answers == ["\\dfrac{3}{4}", "0.75", "1", None, "3/4"]
    assert majority_vote(answers) == ("\\dfrac{3}{4}", 3)
