"""testbench_results - load testbench result files into pandas DataFrames.

    import testbench_results as tr
    r = tr.load(["results/"])          # files, folders (searched recursively) or study folders
    r.runs        # one row per run: file, study and setup, model, GPU, tool and server versions
    r.points      # one row per point and tenant: the summary's figures (ms, tokens/s, %)
    r.requests    # one row per request: times, TTFT/TPOT/E2E in ms, tokens, status, turn
    r.telemetry   # one row per telemetry sample: GPU power/temperature/clock/VRAM, server KV use

Every row names its run (unique: a study's runs are "STUDY/SETUP/FILE"), the study and setup it
was measured for (None outside a study), the base model and its series: the runs that belong on
one line of a chart (a study's setup, or one run outside a study). Nothing here pools runs that
were not measured together; group by "series" (and tenant, context) to keep them apart.

Only the standard library and pandas are used, so a notebook of your own can import this file
from the notebooks/ folder (or copy it). The files' format is described in docs/OUTPUTS.md.
"""

import csv
import json
import math
import os
from collections import namedtuple

import pandas as pd

SCHEMA_VERSION = 1
DETAILED = "_detailed.json"
TELEMETRY = "_telemetry.json"

Results = namedtuple("Results", "runs points requests telemetry")


class NotAResult(ValueError):
    """A file that is not a testbench result, or of a newer schema than this module reads."""


def find_runs(paths):
    """The *_detailed.json files that paths name: files, folders (recursively), globs."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(DETAILED)]
        elif path.endswith("_summary.csv"):
            found.append(path[: -len("_summary.csv")] + DETAILED)
        elif path.endswith(TELEMETRY):
            found.append(path[: -len(TELEMETRY)] + DETAILED)
        else:
            found.append(path)
    seen, out = set(), []
    for f in found:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            out.append(f)
    return out


def study_index(paths):
    """{real path of a run file: {study, setup, workload, users}} for every study folder
    (a folder with study.csv) that paths name or hold."""
    index = {}
    dirs = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                if "study.csv" in files:
                    dirs.append(root)
        elif os.path.basename(path) in ("study.csv", "study.json"):
            dirs.append(os.path.dirname(path) or ".")
    for d in dirs:
        study = os.path.basename(os.path.normpath(d))
        try:
            with open(os.path.join(d, "study.csv"), encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        for row in rows:
            rel = row.get("run_detailed") or ""
            if not rel:
                continue
            real = os.path.realpath(rel if os.path.isabs(rel) else os.path.join(d, rel))
            users = row.get("users") or ""
            index[real] = {"study": study, "setup": row.get("setup") or None,
                           "workload": row.get("workload") or None,
                           "users": int(users) if users.isdigit() else None}
    return index


def spans_decades(values, decades=2.0):
    """Whether positive values span `decades` powers of ten or more (a log axis reads them)."""
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))
         and x > 0]
    return len(v) > 1 and math.log10(max(v) / min(v)) >= decades


def _read(path):
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as e:
            raise NotAResult(f"{path}: not a testbench result (not JSON: {e})") from None
    if not isinstance(doc, dict) or (doc.get("tool") or {}).get("name") != "testbench":
        raise NotAResult(f"{path}: not a testbench result (no tool.name 'testbench')")
    if isinstance(doc.get("schema_version"), int) and doc["schema_version"] > SCHEMA_VERSION:
        raise NotAResult(f"{path}: schema_version {doc['schema_version']} is newer than "
                         f"this module reads ({SCHEMA_VERSION})")
    return doc


def _dist(summary, key, q):
    d = summary.get(key) or {}
    return d.get(q)


def _run_name(path):
    base = os.path.basename(path)
    return base[: -len(DETAILED)] if base.endswith(DETAILED) else base


def _point_row(run, i, p, ids):
    s = p.get("summary") or {}
    tel = s.get("telemetry") or {}
    client = s.get("client") or {}
    row = dict(ids)
    row.update({
        "run": run, "point": i, "tenant": p.get("tenant"),
        "context_length": p.get("context_length"), "concurrency": p.get("concurrency"),
        "rate": p.get("rate"), "partial": p.get("partial"),
        "completed": s.get("completed"), "failed": s.get("failed"),
        "request_throughput": s.get("request_throughput"),
        "output_throughput": s.get("output_throughput"),
        "goodput": s.get("goodput"), "slo_attainment_pct": s.get("slo_attainment_pct"),
        "slo_verdict": s.get("slo_verdict"),
        "user_tps_p50": _dist(s, "user_token_rate", "p50"),
        "energy_per_output_token_j": tel.get("energy_per_output_token_j"),
        "gpu_power_mean_w": tel.get("gpu_power_mean_w"),
        "kv_cache_usage_max_pct": tel.get("kv_cache_usage_max_pct"),
        "client_distorted": client.get("client_distorted"),
        "window_start_s": s.get("window_start_s"), "window_end_s": s.get("window_end_s"),
    })
    for key in ("ttft", "itl", "tpot", "e2e"):
        for q in ("p50", "p90", "p95", "p99"):
            row[f"{key}_{q}_ms"] = _dist(s, f"{key}_ms", q)
    return row


def _request_rows(run, i, p, ids):
    rows = []
    for r in p.get("requests") or []:
        itl = r.get("itl") or []
        ms = lambda v: None if v is None else v * 1e3  # noqa: E731 - seconds to ms
        row = dict(ids)
        row.update({
            "run": run, "point": i, "tenant": r.get("tenant"),
            "context_length": p.get("context_length"), "concurrency": p.get("concurrency"),
            "id": r.get("id"), "status": r.get("status"),
            "t_sent": r.get("t_sent"), "t_end": r.get("t_end"),
            "prompt_tokens": r.get("prompt_tokens"), "output_tokens": r.get("output_tokens"),
            "ttft_ms": ms(r.get("ttft")), "tpot_ms": ms(r.get("tpot")), "e2e_ms": ms(r.get("e2e")),
            "queue_delay_ms": ms(r.get("queue_delay")),
            "itl_mean_ms": sum(itl) / len(itl) * 1e3 if itl else None,
            "itl_max_ms": max(itl) * 1e3 if itl else None,
            "session": r.get("session"), "turn": r.get("turn"),
        })
        rows.append(row)
    return rows


def _telemetry_rows(run, doc, ids):
    rows = []
    for smp in doc.get("samples") or []:
        gpus = smp.get("gpus") or []
        srv = smp.get("server") or {}
        vals = lambda k: [g[k] for g in gpus if g.get(k) is not None]  # noqa: E731
        power, temp, clock, mem = vals("power_w"), vals("temperature_c"), vals("sm_clock_mhz"), \
            vals("memory_used_mib")
        reasons = sorted({r for g in gpus for r in (g.get("throttle_reasons") or [])
                          if r != "gpu_idle"})
        row = dict(ids)
        row.update({
            "run": run, "t": smp.get("t"),
            "gpu_power_w": sum(power) if power else None,
            "gpu_temp_c": max(temp) if temp else None,
            "sm_clock_mhz": min(clock) if clock else None,
            "vram_gib": sum(mem) / 1024 if mem else None,
            "throttle_reasons": ",".join(reasons),
            "kv_cache_usage_pct": srv.get("kv_cache_usage_pct"),
            "requests_running": srv.get("num_requests_running"),
            "requests_waiting": srv.get("num_requests_waiting"),
            "prefix_cache_hit_rate_pct": srv.get("prefix_cache_hit_rate_pct"),
        })
        rows.append(row)
    return rows


# Every frame has these columns, even when empty, so that code grouping by them always runs.
RUN_COLUMNS = ["run", "series", "study", "setup", "workload", "users", "model", "file",
               "started_at", "benchmark", "server_model", "server_version", "tool_version",
               "gpu", "simulated_gpu"]
ID_COLUMNS = ["run", "series", "study", "setup", "model"]
POINT_COLUMNS = ID_COLUMNS + ["point", "tenant", "context_length", "concurrency", "rate",
                              "completed", "failed", "request_throughput", "output_throughput",
                              "user_tps_p50", "slo_attainment_pct", "slo_verdict",
                              "client_distorted", "window_start_s", "window_end_s"]
REQUEST_COLUMNS = ID_COLUMNS + ["point", "tenant", "context_length", "concurrency", "id", "status",
                                "prompt_tokens", "output_tokens", "ttft_ms", "tpot_ms", "e2e_ms",
                                "session", "turn"]
TELEMETRY_COLUMNS = ID_COLUMNS + ["t", "gpu_power_w", "kv_cache_usage_pct"]


def _frame(rows, columns):
    df = pd.DataFrame(rows)
    for c in columns:
        if c not in df.columns:
            df[c] = None
    return df


def _base_model(doc):
    """The model the server ran: the simulator's, else the config's (a tenant may ask for a
    LoRA adapter by another name; that is the point's "model")."""
    cfg = doc.get("config") or {}
    sim = (cfg.get("server") or {}).get("sim") or {}
    if sim.get("enabled") and sim.get("model"):
        return sim["model"]
    return (cfg.get("model") or {}).get("name") or (doc.get("server") or {}).get("model")


def _unique(name, taken, path):
    """name, or (when another run has it) name with its folder, then a number."""
    if name not in taken:
        return name
    alt = f"{os.path.basename(os.path.dirname(path))}/{name}"
    k = 2
    while alt in taken:
        alt = f"{os.path.basename(os.path.dirname(path))}/{name}#{k}"
        k += 1
    return alt


def load(paths):
    """Reads every run that paths name into four DataFrames (see the module's docstring)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    studies = study_index(paths)
    runs, points, requests, telemetry = [], [], [], []
    taken = set()
    for path in find_runs(paths):
        doc = _read(path)
        st = studies.get(os.path.realpath(path), {})
        stem = _run_name(path)
        name = f"{st['study']}/{st['setup']}/{stem}" if st.get("setup") else stem
        name = _unique(name, taken, path)
        taken.add(name)
        # A study's setup is one series (its runs differ in users); any other run is its own.
        series = f"{st['study']}/{st['setup']}" if st.get("setup") else name
        model = _base_model(doc)
        ids = {"run": name, "series": series, "study": st.get("study"), "setup": st.get("setup"),
               "model": model}
        cfg = doc.get("config") or {}
        sim = (cfg.get("server") or {}).get("sim") or {}
        runs.append({
            "run": name, "series": series, "study": st.get("study"), "setup": st.get("setup"),
            "workload": st.get("workload"), "users": st.get("users"), "model": model,
            "file": path, "started_at": doc.get("started_at"),
            "benchmark": (cfg.get("benchmark") or {}).get("name"),
            "server_model": (doc.get("server") or {}).get("model"),
            "server_version": (doc.get("server") or {}).get("version"),
            "tool_version": (doc.get("tool") or {}).get("version"),
            "gpu": " + ".join(g.get("name", "") for g in doc.get("gpus") or []) or None,
            "simulated_gpu": sim.get("gpu") if sim.get("enabled") else None,
        })
        for i, p in enumerate(doc.get("points") or []):
            point = _point_row(name, i, p, ids)
            point["adapter"] = p.get("model") if p.get("model") not in (None, model) else None
            points.append(point)
            requests += _request_rows(name, i, p, ids)
        tpath = path[: -len(DETAILED)] + TELEMETRY if path.endswith(DETAILED) else None
        if tpath and os.path.exists(tpath):
            telemetry += _telemetry_rows(name, _read(tpath), ids)
    return Results(_frame(runs, RUN_COLUMNS), _frame(points, POINT_COLUMNS),
                   _frame(requests, REQUEST_COLUMNS), _frame(telemetry, TELEMETRY_COLUMNS))
