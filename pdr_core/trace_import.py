"""Reading a pdr-trace/1 document: every key checked, a TraceError saying what is wrong."""

from __future__ import annotations

import json
from typing import Any

from pdr_core.heap import bulk_build
from pdr_core.trace import (
    FORMAT,
    STAGE_NAME,
    STAGES,
    STATUSES,
    Node,
    Trace,
    TraceError,
)

# Imports larger than this are refused before parsing.
MAX_IMPORT_BYTES = 50 * 1024 * 1024
# Traces with more nodes are refused: twelve times the largest run this tool makes (width
# 256, depth 32: 8,224 nodes), and what the store imports in seconds (BENCHMARKS.md).
MAX_TRACE_NODES = 100_000
# Keys pdr-trace/1 promises, with the JSON types each may take.
_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "id": (str,),
    "created_at": (str,),
    "question": (str,),
    "reference_answer": (str, type(None)),
    "config": (dict,),
    "status": (str,),
    "nodes": (list,),
    "final_answer": (str, type(None)),
    "correct": (bool, type(None)),
    "budget": (dict,),
}
_NODE_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "stage": (str,),
    "round": (int,),
    "branch": (int,),
    "parent_ids": (list,),
    "messages": (list,),
    "text": (str,),
    "answer": (str, type(None)),
    "correct": (bool, type(None)),
    "usage": (dict,),
    "started_at": (str,),
    "finished_at": (str, type(None)),
    "status": (str,),
    "error": (str, type(None)),
}
# Keys a trace may lack (older versions) but that must have these types when present: the
# store writes them to columns and the pages compute with them.
_OPTIONAL_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "error": (str, type(None)),
    "stop_reason": (str, type(None)),
    "finished_at": (str, type(None)),
    "parent_run_id": (str, type(None)),
    "parent_node_id": (str, type(None)),
    "final_selection": (str, type(None)),
    "task": (dict, type(None)),
    "name": (str, type(None)),
    "tags": (list,),
}
_OPTIONAL_NODE_KEYS: dict[str, tuple[type, ...]] = {
    "error_kind": (str, type(None)),
    "reasoning": (str, type(None)),
    "finish_reason": (str, type(None)),
    "call": (bool,),
    "reused": (bool,),
    "workspace": (dict, type(None)),
    "tests": (dict, type(None)),
    "model": (str, type(None)),
    "endpoint": (str, type(None)),
}
_CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "method": (str,),
    "model": (str, type(None)),
    "base_url": (str, type(None)),
    "distill": (str, type(None)),
    "width_schedule": (list,),
    "depth": (int,),
    "width": (int,),
    "k": (int,),
    "max_tokens": (int,),
    "workspace_tokens": (int,),
    "total_budget": (int, type(None)),
    "distill_max_tokens": (int, type(None)),
    "sr_summary": (bool,),
    "sr_feedback": (bool,),
    "temperature": (int, float),
    "seed": (int,),
    "concurrency": (int,),
    "prompts": (dict,),
}
# Token counts above this are not real (and would overflow the store's integer columns).
MAX_TOKENS_PER_CALL = 10**12
# Deeper JSON than this is refused: folding and storing a trace copies it recursively.
MAX_NESTING = 64


def trace_from_dict(data: Any) -> Trace:
    """Validate a pdr-trace/1 object and build a Trace; raises TraceError saying what is wrong."""
    _check_top(data)
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["nodes"]):
        nodes.append(_node_from_dict(raw, f"node {index}", seen))
        seen.add(raw["id"])
    return Trace(
        id=data["id"], question=data["question"], reference_answer=data["reference_answer"],
        config=data["config"], created_at=data["created_at"], status=data["status"],
        nodes=nodes, final_answer=data["final_answer"], correct=data["correct"],
        error=data.get("error"), stop_reason=data.get("stop_reason"),
        finished_at=data.get("finished_at"), parent_run_id=data.get("parent_run_id"),
        parent_node_id=data.get("parent_node_id"),
        final_selection=data.get("final_selection"), task=data.get("task"),
        name=data.get("name"), tags=list(data.get("tags", [])),
    )


def _check_top(data: Any) -> None:
    """The document as a whole: its format, its top-level keys, settings and text."""
    if not isinstance(data, dict):
        raise TraceError(f"a trace is a JSON object, this file holds a {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("pdr-trace/"):
            raise TraceError(f"trace format version '{fmt}' is not supported; expected '{FORMAT}'")
        raise TraceError(f"not a PDR trace: 'format' is {fmt!r}, expected '{FORMAT}'")
    _check_keys(data, _TOP_KEYS, "trace")
    _check_keys(data, _OPTIONAL_TOP_KEYS, "trace", required=False)
    if not data["id"]:
        raise TraceError("trace 'id' is empty")
    if len(data["nodes"]) > MAX_TRACE_NODES:
        raise TraceError(
            f"the trace has {len(data['nodes']):,} nodes; traces of more than "
            f"{MAX_TRACE_NODES:,} are refused (the largest run this tool makes has 8,224)"
        )
    _check_config(data["config"])
    _check_text(data)
    if not all(isinstance(t, str) for t in data.get("tags", [])):
        raise TraceError("trace 'tags' must be a list of strings")
    if data["status"] not in STATUSES:
        raise TraceError(f"trace 'status' is {data['status']!r}; expected one of {STATUSES}")


def _node_from_dict(raw: Any, where: str, seen: set[str]) -> Node:
    """One node, checked against the ids of the nodes before it (`seen`)."""
    _check_node(raw, where, seen)
    return Node(
        id=raw["id"], stage=raw["stage"], round=raw["round"], branch=raw["branch"],
        parent_ids=list(raw["parent_ids"]), messages=raw["messages"],
        started_at=raw["started_at"], text=raw["text"], answer=raw["answer"],
        correct=raw["correct"], usage=raw["usage"], finished_at=raw["finished_at"],
        status=raw["status"], error=raw["error"], error_kind=raw.get("error_kind"),
        reasoning=str(raw.get("reasoning") or ""),
        finish_reason=raw.get("finish_reason"), call=bool(raw.get("call", True)),
        reused=bool(raw.get("reused", False)), workspace=raw.get("workspace"),
        tests=raw.get("tests"), model=raw.get("model"), endpoint=raw.get("endpoint"),
    )


def _check_node(raw: Any, where: str, seen: set[str]) -> None:
    if not isinstance(raw, dict):
        raise TraceError(f"{where} is not a JSON object")
    _check_keys(raw, _NODE_KEYS, where)
    _check_keys(raw, _OPTIONAL_NODE_KEYS, where, required=False)
    if not STAGE_NAME.fullmatch(raw["stage"]):
        raise TraceError(f"{where}: 'stage' is {raw['stage']!r}; expected a stage name "
                         f"(lower-case letters, digits, - or _), e.g. one of {STAGES}")
    if raw["status"] not in ("ok", "failed", "running"):
        raise TraceError(f"{where}: 'status' is {raw['status']!r}; expected ok or failed")
    if raw["id"] in seen:
        raise TraceError(f"{where}: duplicate node id {raw['id']!r}")
    if not all(isinstance(p, str) for p in raw["parent_ids"]):
        raise TraceError(f"{where}: 'parent_ids' must be a list of node id strings")
    missing_parents = [p for p in raw["parent_ids"] if p not in seen]
    if missing_parents:
        raise TraceError(f"{where}: parent ids {missing_parents} do not precede it")
    for m in raw["messages"]:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)):
            raise TraceError(f"{where}: each message needs string 'role' and 'content'")
    _check_usage(raw["usage"], where)


def _check_usage(usage: dict, where: str) -> None:
    for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
        value = usage.get(key, 0)
        if (not isinstance(value, int) or isinstance(value, bool)
                or not 0 <= value <= MAX_TOKENS_PER_CALL):
            raise TraceError(
                f"{where}: usage.{key} must be a whole number from 0 to "
                f"{MAX_TOKENS_PER_CALL}, not {value!r}"[:200]
            )


def trace_from_json(text: str | bytes) -> Trace:
    """Parse and validate a pdr-trace/1 document."""
    if len(text) > MAX_IMPORT_BYTES:
        raise TraceError(
            f"file is {len(text) / 1e6:.0f} MB; traces over {MAX_IMPORT_BYTES // 2**20} MiB "
            "are refused"
        )
    try:
        with bulk_build():
            data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise TraceError("not a PDR trace: the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise TraceError(f"not a PDR trace: {exc}"[:300]) from None
    with bulk_build():
        return trace_from_dict(data)


def _check_config(config: dict) -> None:
    _check_keys(config, _CONFIG_KEYS, "config", required=False)
    schedule = config.get("width_schedule")
    if schedule is not None and not all(
        isinstance(w, int) and not isinstance(w, bool) for w in schedule
    ):
        raise TraceError("config: 'width_schedule' must be a list of whole numbers")
    prompts = config.get("prompts")
    if prompts is not None and not all(isinstance(v, str) for v in prompts.values()):
        raise TraceError("config: each of 'prompts' must be a string")


def _check_text(data: Any) -> None:
    """Refuse strings that are not Unicode text (lone surrogates from `\\ud800` escapes) and
    nesting deeper than MAX_NESTING: neither can be stored or shown. Iterative, so it cannot
    overflow the stack itself."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)) and depth >= MAX_NESTING:
            raise TraceError(
                f"the trace nests objects and lists more than {MAX_NESTING} levels deep; "
                "a pdr-trace/1 file never does: it is damaged or not a trace"
            )
        if isinstance(value, dict):
            stack.extend((key, depth + 1) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise TraceError(
                    f"the trace holds text that is not valid Unicode (a lone surrogate such as "
                    f"\\ud800) near {value[:40]!r}; fix or remove that text"
                ) from None


def _check_keys(data: dict, spec: dict[str, tuple[type, ...]], where: str,
                required: bool = True) -> None:
    for key, types in spec.items():
        if key not in data:
            if not required:
                continue
            raise TraceError(f"{where} is missing the key '{key}'")
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise TraceError(f"{where}: '{key}' must be {names}, not {type(value).__name__}")
