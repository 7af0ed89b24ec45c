"""The program in a model's output, made whole with the problem's prompt.

The code is the last fenced Python block (```python, ```py, ```python3), else the last
untagged fence, else the whole text. When the problem's prompt is a Python signature (as
HumanEval's are), it is put in front: a model that wrote only the body gets it indented
under the signature, as HumanEval completions need; a model that wrote the whole function
still gets the prompt's imports and helpers, its own definition replacing the stub.
Pure string work on untrusted text: linear regexes, nothing executed.
"""

from __future__ import annotations

import ast
import re

from pdr_core.code.problems import CodeProblem

_FENCE_RE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)^[ \t]*```",
                       re.MULTILINE | re.DOTALL)
_PYTHON_TAGS = ("python", "py", "python3")


def code_block(text: str) -> str:
    """The code a model wrote: its last Python fence, else last bare fence, else the text."""
    python, bare = None, None
    for match in _FENCE_RE.finditer(text):
        tag = match.group(1).lower()
        if tag in _PYTHON_TAGS:
            python = match.group(2)
        elif not tag:
            bare = match.group(2)
    found = python if python is not None else bare
    return (found if found is not None else text).strip("\n")


def _defines(code: str, name: str) -> bool:
    """Whether `code` defines function `name` at its top level (False if it does not parse:
    then it is taken for a body)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the text
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
               for node in tree.body)


def _signature(problem: CodeProblem) -> str | None:
    """The prompt when it is Python defining the entry point, else None (a prose prompt)."""
    return problem.question if _defines(problem.question, problem.entry_point) else None


def _indented(body: str) -> str:
    lines = body.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.startswith((" ", "\t")):
        return body  # already written under the signature
    return "\n".join(f"    {line}" if line.strip() else line for line in lines)


def extract_program(text: str, problem: CodeProblem) -> str | None:
    """The program to test, from a model's output; None when the output holds no code."""
    code = code_block(text)
    if not code.strip():
        return None
    prompt = _signature(problem)
    if prompt is None or code.lstrip().startswith(prompt.strip()):
        return code + "\n"
    if _defines(code, problem.entry_point):
        return prompt.rstrip("\n") + "\n\n\n" + code + "\n"
    return prompt.rstrip("\n") + "\n" + _indented(code) + "\n"
