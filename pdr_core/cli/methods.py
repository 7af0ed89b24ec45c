"""The command line's method flags, generated from the methods' declared settings.

`--method` takes a registered method's name or a plugin's `package.module:function`; every
setting a method declares becomes one flag (a setting several methods share, one flag), so
a plugin's settings appear in `--help` and parse without a change here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pdr_core.config import RUN_DEFAULTS, is_method_ref
from pdr_core.run.api import Method, Setting, declared_by, load_ref
from pdr_core.run.registry import get_method, method_registry


def named_methods(argv: Sequence[str]) -> tuple[Method, ...]:
    """Plugin methods `argv` names by reference (`--method pkg.mod:fn`), loaded so that
    their settings get flags; raises ConfigError when one cannot be loaded."""
    refs = []
    for i, arg in enumerate(argv):
        if arg in ("--method", "--methods") and i + 1 < len(argv):
            refs.extend(argv[i + 1].split(","))  # eval's --methods is a list
        elif arg.startswith(("--method=", "--methods=")):
            refs.extend(arg.split("=", 1)[1].split(","))
    refs = [ref.strip() for ref in refs]
    known = method_registry()
    return tuple(load_ref(ref) for ref in refs if is_method_ref(ref) and ref not in known)


def _method_type(extra: Sequence[Method]):
    table = {**method_registry(), **{m.key: m for m in extra}}

    def method(text: str) -> str:
        if text in table or is_method_ref(text):
            return text
        named = [key for key, m in table.items() if m.name == text]
        if named:
            return named[0]
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(table)}, or a plugin's "
            "package.module:function)")

    return method


def _users(methods: Sequence[Method]) -> dict[str, tuple[Setting, list[str]]]:
    """Each declared setting by name (the first declaration wins), with who declares it."""
    return {name: (setting, [m.name for m in users])
            for name, (setting, users) in declared_by(methods).items()}


def recorded_method(text: str) -> str:
    """What runs of the method `text` record: a registered method's key (a plugin's
    `package.module:function`, also when named by its declared name), else `text`."""
    table = method_registry()
    if text in table:
        return text
    return next((key for key, m in table.items() if m.name == text), text)


def add_method_flags(p: argparse.ArgumentParser, extra: Sequence[Method] = ()) -> None:
    """`--method` and one flag per declared setting of every method (and of `extra`)."""
    methods = (*method_registry().values(), *extra)
    p.add_argument("--method", type=_method_type(extra), default=RUN_DEFAULTS["method"],
                   help="a method's name (" + ", ".join(m.name for m in methods)
                        + "), or a plugin's package.module:function (default: %(default)s)")
    for setting, users in _users(methods).values():
        bounds = "" if setting.type is bool or setting.choices else f"; {setting.allowed()}"
        default_text = "" if setting.default is None else f", default {setting.default}"
        help_text = (f"{setting.help} [{', '.join(users)}{bounds}{default_text}]"
                     .replace("%", "%%"))
        # A plugin's own setting defaults to None: unset, the method's declared default.
        default = setting.default if setting.stored_in_config else None
        names = dict(dest=setting.name, default=default, help=help_text)
        if setting.type is bool:
            p.add_argument(*setting.flags, action="store_true", **names)
        elif setting.choices:
            p.add_argument(*setting.flags, choices=setting.choices, **names)
        else:
            p.add_argument(*setting.flags, type=setting.type, metavar=setting.name.upper(),
                           **names)


def method_config(args: argparse.Namespace) -> dict[str, Any]:
    """RunConfig keyword arguments for `args.method`: every generated flag's value that a
    RunConfig field holds, and the method's own settings as `method_settings`."""
    method = get_method(args.method)
    kwargs: dict[str, Any] = {"method": method.key}
    for setting, _ in _users(method_registry().values()).values():
        if setting.stored_in_config:  # the built-ins' fields keep their values as given
            kwargs[setting.name] = getattr(args, setting.name)
    own = {}
    for setting in method.settings:
        value = getattr(args, setting.name, None)
        if setting.stored_in_config:
            kwargs[setting.name] = value
        elif value is not None:
            own[setting.name] = value
    if own:
        kwargs["method_settings"] = own
    return kwargs



# eval: a declared setting's values go to `dest` SWEEP_PREFIX + its name.
SWEEP_PREFIX = "sweep_"


def add_sweep_flags(p: argparse.ArgumentParser, extra: Sequence[Method] = ()) -> None:
    """eval: one flag per setting the methods (and `extra`) declare that EvalSpec sweeps
    through `method_settings`, named as `run`'s; values comma-separated or the flag
    repeated (free text: one value per flag)."""
    from pdr_core.evals.spec import sweepable  # eval's only: a run never loads evals

    keys = (*method_registry(), *(m.key for m in extra))
    for setting, users in sweepable(dict.fromkeys(keys)).values():
        many = ("repeat the flag for several" if setting.type is str and not setting.choices
                else "comma-separated, or the flag repeated")
        help_text = (f"{setting.help} [{', '.join(users)}; {setting.allowed()}; {many}; "
                     "several values sweep them]").replace("%", "%%")
        p.add_argument(setting.flag or "--" + setting.name.replace("_", "-"),
                       dest=SWEEP_PREFIX + setting.name, action="append",
                       metavar=setting.name.upper(), help=help_text)


def sweep_settings(args: argparse.Namespace, methods: Sequence[str]
                   ) -> dict[str, tuple[Any, ...]]:
    """EvalSpec.method_settings from the flags `add_sweep_flags` made: each given
    setting's values, parsed by its declaration (EvalSpec refuses one that none of
    `methods` declares)."""
    from pdr_core.evals.spec import sweepable

    found = sweepable(dict.fromkeys((*methods, *method_registry())))
    out: dict[str, tuple[Any, ...]] = {}
    for name, (setting, _) in found.items():
        given = getattr(args, SWEEP_PREFIX + name, None)
        if given:
            out[name] = tuple(v for text in given for v in setting.parse(text))
    return out
