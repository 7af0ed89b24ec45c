"""The command line parses a command with that command's group of flags alone, and reads
exactly as the whole parser does: the same values, the same help, the same errors."""

import argparse

import pytest

from pdr_core.cli.parser import GROUPS, build_parser, parse_args


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_command_is_in_its_group_and_only_its_group_is_built():
    whole = list(_choices(build_parser()))
    assert whole == [name for _, commands in GROUPS for name in commands]
    assert list(_choices(build_parser(command="run"))) == ["run"]
    assert list(_choices(build_parser(command="fork"))) == ["resume", "fork", "baseline"]


@pytest.mark.parametrize("argv", [
    ["run", "What is 2+2?", "--method", "vote", "--width", "3"],
    ["--db", "x.sqlite", "run", "q", "--schedule", "4,2,1", "--max-tokens", "9"],
    ["--db=x.sqlite", "list", "--limit", "3"],
    ["fork", "abc", "--node", "r1-draft-0", "--width", "2"],
    ["eval", "set.jsonl", "--methods", "vote,pdr", "--width", "2,4", "--out", "o"],
])
def test_a_command_parses_to_what_the_whole_parser_gives(argv):
    assert vars(parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["run", "q", "--bogus"],
    ["run", "q", "--method", "nope"],
    ["eval", "set.jsonl", "--width", "a"],
    ["--bogus", "run", "q"],
    ["nocmd"],
    ["run", "--help"],
    ["--help"],
])
def test_help_and_errors_read_as_the_whole_parsers(argv, capsys):
    with pytest.raises(SystemExit) as whole:
        build_parser().parse_args(argv)
    expected = capsys.readouterr()
    with pytest.raises(SystemExit) as given:
        parse_args(argv)
    assert capsys.readouterr() == expected
    assert given.value.code == whole.value.code
