"""The knob flags `run` and `eval` share, their defaults read from RunConfig's fields
(config.RUN_DEFAULTS) and their choices from config's lists: written nowhere else."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pdr_core.config import DISTILLS, RUN_DEFAULTS

_HELP = {
    "width": "drafts per round (M)",
    "depth": "rounds (R)",
    "max_tokens": "per-call output budget",
    "distill": "how a round's drafts become the next round's workspace",
    "k": "drafts selected by top-k / random-k",
    "workspace_tokens": "workspace bound kappa",
    "temperature": "sampling temperature",
    "seed": "sampling seed of the first call",
}
_CHOICES = {"distill": DISTILLS}
# The knobs `run` takes here; its width, depth, distill and k are method flags
# (cli.methods), generated from the same defaults.
RUN_KNOBS = ("max_tokens", "workspace_tokens", "temperature", "seed")
EVAL_KNOBS = ("width", "depth", "max_tokens", "distill", "k", "workspace_tokens",
              "temperature", "seed")


def add_knob_flags(p: argparse.ArgumentParser, names: Sequence[str],
                   sweep: Sequence[str] = ()) -> None:
    """One flag per knob in `names`, `--max-tokens` for max_tokens, defaulting to the
    RunConfig field's default; a knob in `sweep` takes comma-separated values (a string,
    parsed by the command), each of which becomes an arm."""
    for name in names:
        default = RUN_DEFAULTS[name]
        flag = "--" + name.replace("_", "-")
        if name in sweep:
            p.add_argument(flag, default=str(default), metavar="LIST",
                           help=f"{_HELP[name]}: comma-separated values to sweep, e.g. "
                                f"{default},{default * 2} (default: %(default)s)")
        elif name in _CHOICES:
            p.add_argument(flag, choices=_CHOICES[name], default=default,
                           help=f"{_HELP[name]} (default: %(default)s)")
        else:
            p.add_argument(flag, type=type(default), default=default,
                           help=f"{_HELP[name]} (default: %(default)s)")
