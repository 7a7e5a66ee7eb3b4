#!/usr/bin/python3
"""content_verification.py: what bench/content-verification does in Python.

  content_verification.py replicas TEMPLATE STORAGE...
      reads "id|replica path" lines on stdin and makes each replica under
      every STORAGE as a copy of the bare repository TEMPLATE: its
      directories made, its files hard-linked (a file is copied once its
      link count reaches the file system's limit, and the copy linked
      from then on).
  content_verification.py run OUT JSONL LABEL PIDS -- COMMAND...
      runs `praefect ... maintenance` (COMMAND), writes its output to OUT
      and appends one JSON row to JSONL: the content verification step's
      wall time (from the line that ends step 2 to the line of step 3),
      its figures, and the CPU of the processes in PIDS over the step and
      over the whole command (PIDS: JSON {"nodes": [...], "praefect": P,
      "postmaster": P}).
  content_verification.py pace URL SECONDS JSONL LABEL PIDS
      the praefect daemon's pace: scrapes URL (praefect's /metrics) and
      samples PIDS, waits SECONDS, does it again; appends one JSON row.
  content_verification.py report JSONL PERF_T0 PERF_CSV...
      prints the tables (Markdown); PERF_T0 is a comma-separated list of
      the wall-clock times the nodes' `perf stat -I` started, in the
      order of the PERF_CSV files (may be empty: no exec counts).
"""
import errno
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")
PREFIX = "praefect maintenance: "


def replicas(template, storages):
    dirs, files = [], []
    for d, _, names in os.walk(template):
        rel = os.path.relpath(d, template)
        if rel != ".":
            dirs.append(rel)
        files.extend(os.path.normpath(os.path.join(rel, n)) for n in names)
    source = {f: os.path.join(template, f) for f in files}
    made = 0
    for line in sys.stdin:
        _, path = line.rstrip("\n").split("|", 1)
        for storage in storages:
            repo = os.path.join(storage, path)
            os.makedirs(repo)
            for d in dirs:
                os.mkdir(os.path.join(repo, d))
            for f in files:
                target = os.path.join(repo, f)
                try:
                    os.link(source[f], target)
                except OSError as e:
                    if e.errno != errno.EMLINK:
                        raise
                    shutil.copy2(source[f], target)
                    source[f] = target
            made += 1
    print(made)


def proc_stat(pid):
    """[utime, stime, cutime, cstime] in clock ticks; None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = s[s.rindex(")") + 2:].split()
    return [int(x) for x in fields[11:15]]


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def children(pid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                s = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(s[s.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(name))
    return out


def postgres_ticks(postmaster):
    """The postmaster's CPU, its reaped backends' and its live ones'."""
    st = proc_stat(postmaster) or [0, 0, 0, 0]
    total = sum(st)
    for child in children(postmaster):
        c = proc_stat(child)
        if c:
            total += c[0] + c[1]
    return total


def sample(pids, cmd_pid=None):
    s = {"t": time.monotonic(), "wall": time.time(),
         "nodes": [proc_stat(p) for p in pids["nodes"]],
         "praefect": proc_stat(pids["praefect"]),
         "postgres": postgres_ticks(pids["postmaster"])}
    if cmd_pid is not None:
        s["cmd"] = proc_stat(cmd_pid)
    return s


def delta(a, b):
    """CPU seconds between two samples: nodes (own, git children), praefect, postgres, command."""
    own = sum((y[0] + y[1]) - (x[0] + x[1]) for x, y in zip(a["nodes"], b["nodes"]))
    kids = sum((y[2] + y[3]) - (x[2] + x[3]) for x, y in zip(a["nodes"], b["nodes"]))
    d = {"wall": b["t"] - a["t"], "node_own": own / HZ, "node_git": kids / HZ,
         "node_per_node": [((y[0] + y[1] + y[2] + y[3]) - (x[0] + x[1] + x[2] + x[3])) / HZ
                           for x, y in zip(a["nodes"], b["nodes"])],
         "praefect": (sum(b["praefect"][:2]) - sum(a["praefect"][:2])) / HZ,
         "postgres": (b["postgres"] - a["postgres"]) / HZ,
         "from": a["wall"], "to": b["wall"]}
    if a.get("cmd") and b.get("cmd"):
        d["cmd"] = (sum(b["cmd"][:2]) - sum(a["cmd"][:2])) / HZ
    return d


def go_seconds(d):
    """Seconds of a Go duration such as 30m, 20s, 1m30s, 500ms."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(h|ms|us|ns|m|s)", d))


def run(out_path, jsonl, label, pids_json, cmd):
    pids = json.loads(pids_json)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = sample(pids)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines, step_start, step_end = [], None, None
    with open(out_path, "w") as out:
        for line in p.stdout:
            s = sample(pids, p.pid)
            out.write(line)
            out.flush()
            lines.append(line.rstrip("\n"))
            if line.startswith(PREFIX + "reconciliation:"):
                step_start = s
            elif line.startswith(PREFIX + "content verification:"):
                step_end = s
    code = p.wait()
    exited, exited_wall = time.monotonic(), time.time()
    # The command's backends exit after it. Sampled while one exits, its CPU
    # can be missed: not yet in the postmaster's reaped children's when the
    # postmaster is read, gone from /proc when the backends are.
    time.sleep(0.3)
    s1 = sample(pids)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    budget = cmd[cmd.index("-content-budget") + 1] if "-content-budget" in cmd else "5m"
    row = {"kind": "run", "label": label, "exit": code, "cmd_argv": cmd[1:],
           "budget": budget, "budget_s": go_seconds(budget),
           "total": dict(delta(s0, s1), wall=exited - s0["t"], exited=exited_wall),
           "cmd_cpu_total": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
           "cmd_maxrss_kib": after.ru_maxrss,
           "node_vmhwm_kib": [vmhwm(p) for p in pids["nodes"]],
           "lines": lines}
    if step_start and step_end:
        row["step"] = delta(step_start, step_end)
        row["step_offset"] = step_start["t"] - s0["t"]
    for line in lines:
        m = re.match(re.escape(PREFIX) + r"content verification: (\d+) repositories checked in ([\d.]+)s: "
                     r"(\d+) replicas match, (\d+) differ .*?, (\d+) skipped, (\d+) errors", line)
        if m:
            row["checked"], row["printed_s"] = int(m.group(1)), float(m.group(2))
            row["matched"], row["differ"], row["skipped"], row["errors"] = map(int, m.group(3, 4, 5, 6))
            row["pass_completed"] = "a pass over every repository completed" in line
        m = re.match(re.escape(PREFIX) + r"(OK|UNREPAIRED): (.*)", line)
        if m:
            row["verdict"] = m.group(1)
            row["summary"] = dict(kv.split("=", 1) for kv in m.group(2).split())
    with open(jsonl, "a") as f:
        f.write(json.dumps(row) + "\n")
    return 0


def scrape(url):
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    by_result = {}
    for line in text.splitlines():
        if line.startswith("gitaly_praefect_content_verification_replicas_total{"):
            m = re.search(r'result="([^"]*)"', line)
            by_result[m.group(1)] = by_result.get(m.group(1), 0) + float(line.rsplit(" ", 1)[1])
    return by_result


def pace(url, seconds, jsonl, label, pids_json):
    pids = json.loads(pids_json)
    m0, s0 = scrape(url), sample(pids)
    time.sleep(seconds)
    m1, s1 = scrape(url), sample(pids)
    replicas = {k: m1.get(k, 0) - m0.get(k, 0) for k in set(m0) | set(m1)}
    row = {"kind": "pace", "label": label, "window": delta(s0, s1), "replicas": replicas,
           "node_vmhwm_kib": [vmhwm(p) for p in pids["nodes"]]}
    with open(jsonl, "a") as f:
        f.write(json.dumps(row) + "\n")
    return 0


def perf_execs(t0s, csvs):
    """[(wall time at the end of the interval, execs in it)] of every node, merged."""
    events = []
    for t0, path in zip(t0s, csvs):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 4 or line.startswith("#") or not parts[1].isdigit():
                    continue
                events.append((t0 + float(parts[0]), int(parts[1])))
    return events


def execs_between(events, a, b, interval=0.1):
    """Execs counted in intervals that overlap [a, b] (perf's interval ends at t)."""
    return sum(n for t, n in events if t > a and t - interval < b)


def f2(x):
    return "%.2f" % x


def report(jsonl, t0_list, csvs):
    rows, extras = [], {}
    for line in open(jsonl):
        row = json.loads(line)
        if row["kind"] == "extra":
            extras.setdefault(row["label"], {}).update(row)
        else:
            rows.append(row)
    for row in rows:
        for k, v in extras.get(row["label"], {}).items():
            if k not in ("kind", "label"):
                row[k] = v
    t0s = [float(x) for x in t0_list.split(",")] if t0_list else []
    events = perf_execs(t0s, csvs) if t0s else None
    runs = [r for r in rows if r["kind"] == "run"]
    print("| run | budget | content step wall s | printed | repositories checked | repositories/s "
          "| past the budget s | mismatches found / repaired | command wall s (exit) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        step = r.get("step", {"wall": float("nan")})
        budget = r["budget_s"]
        over = step["wall"] - budget
        s = r.get("summary", {})
        print("| %s | %s | %.2f | %.1f | %d | %.1f | %s | %s / %s | %.1f (%d) |" % (
            r["label"], r["budget"], step["wall"], r.get("printed_s", float("nan")), r.get("checked", 0),
            r.get("checked", 0) / step["wall"], ("%+.2f" % over) if not r.get("pass_completed") else
            "- (finished: once round)", s.get("mismatches_found", "?"), s.get("mismatches_repaired", "?"),
            r["total"]["wall"], r["exit"]))
    print()
    print("Load during the content verification step (CPU seconds; /proc/PID/stat utime+stime, the nodes' "
          "reaped git processes from cutime+cstime; PostgreSQL: the postmaster and every backend):")
    print()
    print("| run | nodes: own | nodes: git | nodes: total (per node) | nodes' share of 2 cores "
          "| ms of node CPU per repository | git execs on the nodes (per repository) "
          "| maintenance | praefect server | PostgreSQL |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        if "step" not in r:
            continue
        d = r["step"]
        node = d["node_own"] + d["node_git"]
        checked = max(r.get("checked", 0), 1)
        if events is not None:
            # From the command's start to its exit: the nodes start no git
            # process outside the step but for the repairs, which the command
            # waits for. Widened by two intervals against PERF_T0's error
            # (the next command starts 0.4 s after this one's exit).
            n = execs_between(events, r["total"]["from"] - 0.2, r["total"]["exited"] + 0.2)
            execs = "%d (%.2f)" % (n, n / checked)
        else:
            execs = "-"
        print("| %s | %s | %s | %s (%s) | %.0f %% | %.2f | %s | %s | %s | %s |" % (
            r["label"], f2(d["node_own"]), f2(d["node_git"]), f2(node), " ".join(f2(x) for x in d["node_per_node"]),
            100 * node / (2 * d["wall"]), 1000 * node / checked, execs, f2(d.get("cmd", float("nan"))),
            f2(d["praefect"]), f2(d["postgres"])))
    print()
    for r in runs:
        t = r["total"]
        print("%s: whole command %.1f s (content step from %.1f s), its CPU %.2f s, peak RSS %d KiB; "
              "nodes %.2f s (git %.2f s); PostgreSQL %.2f s; claims %s" % (
                  r["label"], t["wall"], r.get("step_offset", float("nan")), r["cmd_cpu_total"],
                  r["cmd_maxrss_kib"], t["node_own"] + t["node_git"], t["node_git"], t["postgres"],
                  r.get("claims", "-")))
    vm = max((r["node_vmhwm_kib"] for r in rows), key=max)
    print("nodes' peak RSS (VmHWM, KiB, at the end): %s" % " ".join(str(x) for x in vm))
    paces = [r for r in rows if r["kind"] == "pace"]
    if paces:
        print()
        print("| daemon | window s | replicas compared (by result) | repositories/s (replicas / 2) "
              "| configured | nodes' CPU s (share of 2 cores) | git execs on the nodes | praefect CPU s "
              "| PostgreSQL CPU s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in paces:
        w = r["window"]
        compared = sum(r["replicas"].values())
        node = w["node_own"] + w["node_git"]
        # The daemon does not stop at the window's edges: perf's intervals
        # there count partly (+-1 interval per node at each end).
        execs = "~%d" % execs_between(events, w["from"], w["to"]) if events is not None else "-"
        print("| %s | %.1f | %d (%s) | %.1f | %s | %.2f (%.0f %%) | %s | %s | %s |" % (
            r["label"], w["wall"], compared,
            ", ".join("%s %d" % (k, v) for k, v in sorted(r["replicas"].items())),
            compared / 2 / w["wall"], r.get("configured", "?"), node, 100 * node / (2 * w["wall"]), execs,
            f2(w["praefect"]), f2(w["postgres"])))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "replicas":
        return replicas(argv[2], argv[3:])
    if len(argv) >= 7 and argv[1] == "run" and argv[6] == "--":
        return run(argv[2], argv[3], argv[4], argv[5], argv[7:])
    if len(argv) == 7 and argv[1] == "pace":
        return pace(argv[2], float(argv[3]), argv[4], argv[5], argv[6])
    if len(argv) >= 4 and argv[1] == "report":
        return report(argv[2], argv[3], argv[4:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
