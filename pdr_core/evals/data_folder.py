"""The one server folder a browser user may read datasets from (`PDR_DATA_DIR`).

The app runs on a server; a path typed into a page must not let whoever opens it read, or
learn whether there is, any file the server can see. So the app reads no server path at all
unless `PDR_DATA_DIR` names a folder, and then only files inside it, by a name relative to
it. The messages never say whether a path outside the folder exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pdr_core.evals.problems import DatasetError

ENV = "PDR_DATA_DIR"
# A Hub dataset id (owner/name): the Hub loader reads a local folder of that name instead.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def data_folder() -> Path | None:
    """The configured data folder, or None when the server set none."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def data_file(name: str, folder: Path | None) -> Path:
    """The file `name` (relative to `folder`) inside `folder`; DatasetError when the server
    has no data folder, when `name` leads outside it, or when there is no such file in it."""
    if folder is None:
        raise DatasetError(
            "this app reads no files on the server: upload a JSONL file instead (or have "
            f"whoever runs the app set {ENV} to a folder of datasets, then name a file in it)")
    path = Path(name)
    # Resolved first, so '..' and links out of the folder are refused like absolute paths.
    target = (folder / path).resolve()
    if path.is_absolute() or not target.is_relative_to(folder):
        raise DatasetError(
            f"{name!r} is not in the data folder: name a file relative to it, e.g. "
            "problems.jsonl (only files in the server's data folder can be read)")
    if not target.is_file():
        listed = sorted(p.name for p in folder.glob("*.jsonl"))[:20]
        raise DatasetError(f"no file {name!r} in the data folder; it holds: "
                           f"{', '.join(listed) or 'no .jsonl files'}")
    return target


def check_hub_spec(spec: str) -> None:
    """Refuse an `hf:` spec whose name is not a Hub id `owner/name` (a path would be read
    from the server's disk)."""
    name = spec.removeprefix("hf:").split(":", 1)[0]
    if not HUB_ID.fullmatch(name) or ".." in name:
        raise DatasetError(f"{name!r} is not a Hugging Face dataset id: write hf:OWNER/NAME, "
                           "e.g. hf:HuggingFaceH4/MATH-500")
