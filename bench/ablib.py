"""ablib: what bench/fork_ab and bench/proxy_ab share.

One run: start a server pinned to a CPU (perf stat around it when perf is
there, counting it, its threads and its children), read its port from its
first lines, drive it with bench/loadgen connect -c 16 pinned to CPU 0, stop
it, and return (connections/s, server CPU us per connection, page faults per
connection); the last two are None without perf. Every run is bounded: the
load generator's deadline, then SIGTERM, then SIGKILL.
"""
import json, os, re, signal, subprocess, sys

DAEMON_READY = re.compile(r"listening on \S*:(\d+)")
PORT_LINE = re.compile(r"^(\d+)\s*$")


def start(argv, cpu, ready, stream):
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    src = p.stdout if stream == "stdout" else p.stderr
    for _ in range(200):
        line = src.readline()
        if not line:
            break
        m = ready.search(line)
        if m:
            return p, int(m.group(1))
    p.kill()
    sys.exit("%s did not start" % argv[0])


def run(cmd, stream, cpu, lg, duration, tmp, perf=None, lg_args=()):
    """cmd prints its port on stdout (stream "stdout") or is the daemon
    (stream "stderr": its "listening on" line)."""
    stat = os.path.join(tmp, "perf.out")
    pre = [perf, "stat", "-x,", "-e", "task-clock,page-faults", "-o", stat,
           "--"] if perf else []
    if os.path.exists(stat):
        os.unlink(stat)
    ready = PORT_LINE if stream == "stdout" else DAEMON_READY
    p, port = start(pre + cmd, cpu, ready, stream)
    try:
        out = subprocess.run(["taskset", "-c", "0", lg, "connect",
                              "tcp:127.0.0.1:%d" % port, "-c", "16",
                              "-d", str(duration), "-w", "0.2"] +
                             list(lg_args),
                             capture_output=True, text=True,
                             timeout=duration + 30).stdout
    finally:
        # under perf, stop the server itself so perf writes its counts
        kids = subprocess.run(["pgrep", "-P", str(p.pid)],
                              capture_output=True, text=True).stdout.split()
        for k in kids if perf else [str(p.pid)]:
            os.kill(int(k), signal.SIGTERM)
        try:
            p.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    j = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    us = pf = None
    if perf and os.path.exists(stat) and j["connections"]:
        v = {}
        for line in open(stat):
            f = line.split(",")
            if len(f) > 2 and re.match(r"^[\d.]+$", f[0]):
                v[f[2]] = float(f[0])
        if "task-clock" in v and "page-faults" in v:
            # over the whole run (warm-up too): a per-connection estimate
            n = j["connections"] * (1 + 0.2 / duration)
            us = v["task-clock"] * 1000 / n
            pf = v["page-faults"] / n
    return j["cps"], us, pf


def span(q):
    """median (min-max) of a list of ratios, as text"""
    import statistics
    return "%.2f (%.2f-%.2f)" % (statistics.median(q), min(q), max(q))
