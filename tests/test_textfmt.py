import pytest

from pdr_core.render.textfmt import model_markdown


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
        # markup is escaped (st.markdown escapes HTML too); links and images are inert
        ("<script>alert(1)</script>", "\\<script>alert(1)\\</script>"),
        ("![](http://h.example/p.png?leak=1)", "!\\[\\](http\u2060://h.example/p.png?leak=1)"),
        ("[c](HTTPS://e.example) www.e.example a@e.example",
         "\\[c\\](HTTP\u2060S://e.example) www\u2060.e.example a\u2060@e.example"),
        (":red[x] <http://e.example>", ":red\\[x\\] \\<http\u2060://e.example>"),
        # math and code spans keep their text; an escaped $ or backtick opens none
        ("$[a](b)$ and `[k](l)`", "$[a](b)$ and `[k](l)`"),
        ("\\$ [x](http://e) $", "\\$ \\[x\\](http\u2060://e) $"),
        ("``[x](http://e)`", "``\\[x\\](http\u2060://e)`"),
    ],
)
def test_model_markdown(text, expected):
    assert model_markdown(text) == expected


def test_inert_shows_text_as_it_is():
    from conftest import plain

    from pdr_core.render.textfmt import inert

    hostile = "`x` ![](http://h/p.png?leak=1) **b** $x$ :red[y] <a href=z>"
    escaped = inert(hostile)
    assert plain(escaped) == hostile
    assert all(escaped[i - 1] == "\\" for i, c in enumerate(escaped) if c in "[]`*$<:!")
