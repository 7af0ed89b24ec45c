"""Read the metadata of a GGUF model file without llama.cpp.

The app and the command line never load llama.cpp into their own process (the model runs in
a worker), yet they need a model's name and whether it can format chat messages before the
first call. GGUF keeps both in a key-value header ahead of the tensors; this reads only that.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["GGUFError", "read_metadata"]

_MAGIC = b"GGUF"
# Value types of the GGUF format (version 2 and 3): scalar struct formats by type id.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# Keys whose values are wanted; arrays (the vocabulary, tens of thousands of strings) are
# skipped over without being decoded.
WANTED = ("general.name", "general.architecture", "tokenizer.chat_template",
          "general.basename", "general.size_label")


class GGUFError(ValueError):
    """The file is not a GGUF file this reader understands."""


def read_metadata(path: Path, keys: tuple[str, ...] = WANTED) -> dict[str, object]:
    """The scalar and string values of `keys` found in the header of the GGUF file `path`."""
    with open(path, "rb") as handle:
        return _Reader(handle, path).metadata(keys)


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path):
        self.handle = handle
        self.path = path

    def read(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise GGUFError(f"{self.path} ends inside its GGUF header: the file is truncated")
        return data

    def unpack(self, fmt: str) -> object:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        size = int(self.unpack("<Q"))
        if size > 1 << 26:
            raise GGUFError(f"{self.path}: a {size}-byte string in the header: not GGUF")
        return self.read(size).decode("utf-8", errors="replace")

    def metadata(self, keys: tuple[str, ...]) -> dict[str, object]:
        if self.read(4) != _MAGIC:
            raise GGUFError(f"{self.path} is not a GGUF model file (no GGUF magic number)")
        version = self.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"{self.path} is GGUF version {version}; versions 2 and 3 are read")
        self.unpack("<Q")  # tensor count
        count = int(self.unpack("<Q"))
        found: dict[str, object] = {}
        for _ in range(count):
            key = self.string()
            kind = int(self.unpack("<I"))
            value = self.value(kind)
            if key in keys:
                found[key] = value
        return found

    def value(self, kind: int) -> object:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            self.skip_array()
            return None
        raise GGUFError(f"{self.path}: unknown GGUF value type {kind}")

    def skip_array(self) -> None:
        kind = int(self.unpack("<I"))
        count = int(self.unpack("<Q"))
        if kind in _SCALARS:
            self.handle.seek(count * struct.calcsize(_SCALARS[kind]), 1)
            return
        skip: Callable[[], object]
        if kind == _STRING:
            def skip() -> None:
                self.handle.seek(int(self.unpack("<Q")), 1)
        elif kind == _ARRAY:
            skip = self.skip_array
        else:
            raise GGUFError(f"{self.path}: unknown GGUF array type {kind}")
        for _ in range(count):
            skip()
