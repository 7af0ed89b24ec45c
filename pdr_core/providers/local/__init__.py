"""The local model: a GGUF chat model run by llama.cpp in a worker process.

The app and the command line never load llama.cpp themselves: `LocalProvider` starts a
worker (`worker.py`) on first use and talks to it over pipes (`client.py`); the worker
decodes every call in flight together (`decoder.py`). Only the worker imports llama_cpp.
"""

from pdr_core.providers.local.files import (
    BUNDLED_MODEL_FILE,
    BUNDLED_MODEL_NAME,
    LOCAL_MODEL_ENV,
    ModelFile,
    bundled_model_path,
    model_file,
)
from pdr_core.providers.local.provider import (
    LOCAL_MODEL_NOTE,
    LocalProvider,
    default_threads,
    shared_local_provider,
)

__all__ = [
    "BUNDLED_MODEL_FILE",
    "BUNDLED_MODEL_NAME",
    "LOCAL_MODEL_ENV",
    "LOCAL_MODEL_NOTE",
    "LocalProvider",
    "ModelFile",
    "bundled_model_path",
    "default_threads",
    "model_file",
    "shared_local_provider",
]
