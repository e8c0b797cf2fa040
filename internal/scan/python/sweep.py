# imagegate's import sweep: imports standard-library modules one by one in
# this interpreter and reports each result as one JSON line on the original
# stdout, flushed, so that a crash or a hang loses only the module at fault.
# Runs unchanged on Python 2.7 and 3.6+; it needs nothing but sys, os and
# signal (all built in) so that a broken standard library cannot stop it.
#
# argv: TIMEOUT MODE NAME... ; MODE "full" also imports the interpreter's own
# sys.builtin_module_names and sys.stdlib_module_names, minus names given as
# "!NAME"; MODE "only" imports exactly the NAMEs (a restart after a crash).
# Lines: {"t":"hello",...,"plan":[...]} then per module {"t":"start","m":...}
# and {"t":"ok"|"err"|"timeout","m":...,"e":...}, and {"t":"done"} at the end.
import os
import signal
import sys


def quote(s):
    if not isinstance(s, str):
        try:
            s = s.decode("utf-8", "replace")
        except Exception:
            s = repr(s)
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20 or o > 0x7E:
            if o > 0xFFFF:
                o -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
            else:
                out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def text(e):
    try:
        s = str(e)
    except Exception:
        s = repr(e)
    if isinstance(e, ImportError):
        return s
    return type(e).__name__ + ": " + s


class Timeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise Timeout()


def attempt(emit, name, timeout):
    """Imports name and reports it; False for an ImportError worth a retry."""
    emit('{"t":"start","m":%s}' % quote(name))
    try:
        signal.alarm(timeout)
        try:
            __import__(name)
        finally:
            signal.alarm(0)
    except Timeout:
        emit('{"t":"timeout","m":%s}' % quote(name))
        return True
    except BaseException as e:  # SystemExit and KeyboardInterrupt included
        emit('{"t":"err","m":%s,"e":%s}' % (quote(name), quote(text(e))))
        return not isinstance(e, ImportError) or str(e).startswith("No module named")
    emit('{"t":"ok","m":%s}' % quote(name))
    return True


def main():
    # The protocol gets a private copy of stdout; whatever modules print on
    # import (this, __hello__, readline's escape codes) goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if "" in sys.path:
        sys.path.remove("")

    def emit(line):
        out.write(line + "\n")
        out.flush()

    timeout = int(sys.argv[1])
    mode = sys.argv[2]
    names = [n for n in sys.argv[3:] if not n.startswith("!")]
    skip = set(n[1:] for n in sys.argv[3:] if n.startswith("!"))
    builtins = sorted(sys.builtin_module_names)
    stdlib = sorted(getattr(sys, "stdlib_module_names", ()))
    plan = list(names)
    if mode == "full":
        seen = set(names) | skip
        for n in builtins + stdlib:
            if n not in seen:
                seen.add(n)
                plan.append(n)
    v = sys.version_info
    emit('{"t":"hello","version":%s,"builtins":[%s],"stdlib":%s,"plan":[%s]}' % (
        quote("%d.%d.%d" % (v[0], v[1], v[2]) + ("" if v[3] == "final" else "%s%d" % (v[3][0] if v[3] != "candidate" else "rc", v[4]))),
        ",".join(quote(n) for n in builtins),
        "[" + ",".join(quote(n) for n in stdlib) + "]" if hasattr(sys, "stdlib_module_names") else "null",
        ",".join(quote(n) for n in plan)))
    try:
        import warnings
        warnings.simplefilter("ignore")
    except Exception:
        pass
    signal.signal(signal.SIGALRM, on_alarm)
    retry = []
    for name in plan:
        if not attempt(emit, name, timeout):
            retry.append(name)
    # A module that is only ever imported through another one can fail on
    # its own through a circular import (Python 2's _LWPCookieJar needs
    # cookielib first). Once everything else is loaded, it gets one more try.
    for name in retry:
        attempt(emit, name, timeout)
    emit('{"t":"done"}')
    # Skip atexit handlers and non-daemon threads the modules started.
    os._exit(0)


main()
