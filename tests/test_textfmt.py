import pytest

from pdr_core.textfmt import model_markdown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is \\boxed{52}.", "The answer is $\\boxed{52}$."),
        ("So $x = \\boxed{3}$ here", "So $x = \\boxed{3}$ here"),
        ("\\[ x^2 = 4 \\]", "$$x^2 = 4$$"),
        ("where \\(a+b\\) holds", "where $a+b$ holds"),
        ("line one\nline two", "line one  \nline two"),
        ("para\n\nnext", "para\n\nnext"),
        ("\\boxed{\\frac{1}{2}} and \\boxed{7}", "$\\boxed{\\frac{1}{2}}$ and $\\boxed{7}$"),
        ("cut off \\boxed{\\frac{1", "cut off \\boxed{\\frac{1"),
        ("```\ncode \\boxed{1}\nx\n```", "```\ncode \\boxed{1}\nx\n```"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ],
)
def test_model_markdown(text, expected):
    assert model_markdown(text) == expected
