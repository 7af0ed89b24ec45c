"""Which endpoint, model and key a command calls: its flags, and the settings they give
under the one rule of `pdr_core.providers.endpoints`."""

from __future__ import annotations

import argparse
import os
import sys

from pdr_core.config import ConfigError
from pdr_core.heap import end_startup
from pdr_core.providers import EndpointRequest, EndpointSettings, choose_endpoint, resolve_provider
from pdr_core.store import Store

KEY_ENV_HELP = ("name of an environment variable holding the key for --base-url "
                "(OPENAI_API_KEY goes only to $OPENAI_BASE_URL, else to OpenAI)")
LOCAL_HELP = ("run on the local model: the bundled SmolLM2 (or $PDR_LOCAL_MODEL), or the GGUF "
              "chat model file given")


def endpoint_flags(p: argparse.ArgumentParser, recorded: bool = False) -> None:
    """--base-url, --model, --api-key-env, --local and the call limits; with `recorded`
    (a command that continues a stored run) the run's own endpoint is the default."""
    if recorded:
        p.add_argument("--base-url", help="OpenAI-compatible endpoint (else the run's own)")
        p.add_argument("--model", help="model name (else the run's own)")
    else:
        p.add_argument("--base-url", help="OpenAI-compatible endpoint (else $OPENAI_BASE_URL)")
        p.add_argument("--model", help="model name (else $PDR_MODEL)")
    p.add_argument("--api-key-env", metavar="NAME", help=KEY_ENV_HELP)
    p.add_argument("--local", nargs="?", const="", default=None, metavar="GGUF",
                   help=LOCAL_HELP)
    if recorded:
        p.add_argument("--trust-recorded-endpoint", action="store_true",
                       help="send the configured key to the run's recorded endpoint when it "
                            "is not the configured one (e.g. an imported run)")
    # Strings: resolve_provider checks them, with the environment variables, in one place.
    p.add_argument("--timeout", metavar="SECONDS",
                   help="how long one try of a call may take (else $PDR_TIMEOUT; default 600)")
    p.add_argument("--max-retries", metavar="N",
                   help="tries of a failed call after the first (else $PDR_MAX_RETRIES; "
                        "default 2)")


def endpoint(args: argparse.Namespace, config: dict | None = None) -> EndpointSettings:
    """The endpoint, model and key of a command; `config` is the run a resume or fork
    continues."""
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError("api-key-env", args.api_key_env,
                              "the name of a set environment variable holding the key for "
                              "--base-url")
    given = {"base_url": args.base_url, "model": args.model, "api_key": key,
             "local": args.local is not None, "local_model": args.local or None,
             "timeout": args.timeout, "max_retries": args.max_retries}
    if config is None:
        return choose_endpoint(EndpointRequest(**given))
    return choose_endpoint(EndpointRequest.for_run(
        config, use_recorded=not (args.base_url or args.local is not None),
        trust_recorded=args.trust_recorded_endpoint, **given))


def connect(settings: EndpointSettings, store: Store):
    """The provider for `settings`, `store` keeping what it learns about the endpoint; its
    SDK is imported now, so the process's start-up ends here (`heap.end_startup`)."""
    provider = resolve_provider(settings, memory=store)
    end_startup()
    return provider


def provider_for(args: argparse.Namespace, config: dict, store: Store):
    """The run's own endpoint unless flags name another; says which on stderr."""
    settings = endpoint(args, config)
    print(f"calling {settings.describe()}", file=sys.stderr)
    return connect(settings, store)
