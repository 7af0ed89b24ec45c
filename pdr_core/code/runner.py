"""The child side of the executor: runs inside the contained process, never in the app.

Started as `python -I -c <this source> RESULT_FD TOKEN`; reads one JSON payload
(`program`, `tests`, `entry_point`, `limits`) on stdin, lowers its own resource limits,
loads the program, then runs each statement of the tests' `check(candidate)` that holds an
`assert` as one test. Every result is one JSON line on RESULT_FD, written as soon as it is
known, so a run stopped at a limit still reports the tests that finished.

Standard library only: it runs in a bare interpreter, and it must not import pdr_core.
"""

import ast
import ctypes
import json
import os
import platform
import resource
import struct
import sys
import traceback

MAX_TEXT = 2_000  # characters of one output or error


def _emit(fd, **record):
    os.write(fd, (json.dumps(record) + "\n").encode())


def _clip(text):
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 20] + " ... [trimmed]"


def _limit(limits):
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _no_new_processes()


# Syscalls that make a process or thread, by machine: (seccomp audit arch, numbers).
_SPAWN = {"x86_64": (0xC000003E, (56, 57, 58, 435)),  # clone, fork, vfork, clone3
          "aarch64": (0xC00000B7, (220, 435))}  # clone, clone3


def _no_new_processes():
    """Forbid fork and clone from here on (a seccomp filter: they fail with EPERM).

    RLIMIT_NPROC does not bind root, so under root a fork bomb would otherwise grow until
    the wall-clock limit. Where seccomp is unavailable the process limit is all there is.
    """
    machine = _SPAWN.get(platform.machine())
    if machine is None or not sys.platform.startswith("linux"):
        return
    arch, numbers = machine
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO(EPERM)
    code = [(0x20, 0, 0, 4),  # load the arch
            (0x15, 0, len(numbers) + 2, arch),  # another arch: allow
            (0x20, 0, 0, 0)]  # load the syscall number
    code.append((0x35, len(numbers) + 1, 0, 0x40000000))  # x32 ABI numbers: deny
    for index, number in enumerate(numbers):
        code.append((0x15, len(numbers) - index, 0, number))
    code += [(0x06, 0, 0, allow), (0x06, 0, 0, deny)]
    program = b"".join(struct.pack("HBBI", *op) for op in code)
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxP", len(code), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return
    libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _error(exc):
    """The exception and the last frames of its traceback inside the candidate's code."""
    if isinstance(exc, SyntaxError):
        return _clip(f"SyntaxError: {exc.msg} (line {exc.lineno})")
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename in ("<program>", "<tests>")][-3:]
    where = "".join(traceback.format_list(frames))
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _clip((where + text) if where else text)


def _tests(source):
    """(setup statements, the name `check` gives its argument, its body)."""
    tree = ast.parse(source, "<tests>")
    setup, check = [], None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            check = node
        else:
            setup.append(node)
    if check is None or not check.args.args:
        raise ValueError("the tests define no check(candidate) function")
    return setup, check.args.args[0].arg, check.body


def _run_assert(node, ns, fd, index, name):
    """One `assert`: the value the candidate gave (the comparison's left side) and the
    verdict, the left side evaluated once."""
    test, output = node.test, None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left = eval(compile(ast.Expression(test.left), "<tests>", "eval"), ns)
        output = _clip(repr(left))
        ns["__pdr_left__"] = left
        test = ast.Compare(ast.Name("__pdr_left__", ast.Load()), test.ops, test.comparators)
        ast.fix_missing_locations(ast.copy_location(test, node.test))
    ok = bool(eval(compile(ast.Expression(test), "<tests>", "eval"), ns))
    error = None
    if not ok:
        message = node.msg and eval(compile(ast.Expression(node.msg), "<tests>", "eval"), ns)
        error = "AssertionError" + (f": {_clip(str(message))}" if message else "")
        if output is not None:
            error += f" (the candidate gave {output})"
    _emit(fd, kind="test", index=index, name=name, passed=ok, output=output, error=error)


def _run_check(body, source, ns, fd):
    index = 0
    for node in body:
        name = _clip((ast.get_source_segment(source, node) or "").splitlines()[0])
        is_test = any(isinstance(n, ast.Assert) for n in ast.walk(node))
        try:
            if isinstance(node, ast.Assert):
                _run_assert(node, ns, fd, index, name)
            else:
                exec(compile(ast.Module([node], []), "<tests>", "exec"), ns)
                if is_test:
                    _emit(fd, kind="test", index=index, name=name, passed=True, output=None,
                          error=None)
        except BaseException as exc:  # noqa: BLE001 - the candidate's failure is the result
            _emit(fd, kind="test", index=index, name=name, passed=False, output=None,
                  error=_error(exc), memory=isinstance(exc, MemoryError))
            if not is_test:
                return  # a failed setup statement leaves the later tests meaningless
        index += is_test


def main():
    fd = int(sys.argv[1])
    payload = json.loads(sys.stdin.read())
    sys.stdin = open(os.devnull)  # the candidate reads nothing
    _limit(payload["limits"])
    ns = {"__name__": "__candidate__"}
    try:
        exec(compile(payload["program"], "<program>", "exec"), ns)
    except BaseException as exc:  # noqa: BLE001 - a program that does not load is the result
        _emit(fd, kind="load", error=_error(exc), memory=isinstance(exc, MemoryError))
        return
    candidate = ns.get(payload["entry_point"])
    if not callable(candidate):
        _emit(fd, kind="load", error=f"the program defines no function named "
                                     f"{payload['entry_point']!r}", memory=False)
        return
    try:
        setup, argument, body = _tests(payload["tests"])
        # HumanEval's tests see the program's names (HumanEval/32 calls the prompt's
        # `poly`): they run over a copy of its namespace, so their setup cannot change it.
        test_ns = {**ns, "__name__": "__tests__"}
        exec(compile(ast.Module(setup, []), "<tests>", "exec"), test_ns)
    except BaseException as exc:  # noqa: BLE001 - broken tests are reported, not raised
        _emit(fd, kind="load", error="the tests do not load: " + _error(exc), memory=False)
        return
    test_ns[argument] = candidate
    _run_check(body, payload["tests"], test_ns, fd)
    _emit(fd, kind="done")


if __name__ == "__main__":
    main()
