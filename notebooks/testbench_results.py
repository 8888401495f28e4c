"""testbench_results - load testbench result files into pandas DataFrames.

    import testbench_results as tr
    r = tr.load(["results/"])          # files, folders (searched recursively) or study folders
    r.runs        # one row per run: file, model, GPU, tool and server versions
    r.points      # one row per point and tenant: the summary's figures (ms, tokens/s, %)
    r.requests    # one row per request: times, TTFT/TPOT/E2E in ms, tokens, status
    r.telemetry   # one row per telemetry sample: GPU power/temperature/clock/VRAM, server KV use

Only the standard library and pandas are used, so a notebook of your own can import this file
from the notebooks/ folder (or copy it). The files' format is described in docs/OUTPUTS.md.
"""

import json
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


def _point_row(run, i, p):
    s = p.get("summary") or {}
    tel = s.get("telemetry") or {}
    client = s.get("client") or {}
    row = {
        "run": run, "point": i, "tenant": p.get("tenant"), "model": p.get("model"),
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
    }
    for key in ("ttft", "itl", "tpot", "e2e"):
        for q in ("p50", "p90", "p95", "p99"):
            row[f"{key}_{q}_ms"] = _dist(s, f"{key}_ms", q)
    return row


def _request_rows(run, i, p):
    rows = []
    for r in p.get("requests") or []:
        itl = r.get("itl") or []
        ms = lambda v: None if v is None else v * 1e3  # noqa: E731 - seconds to ms
        rows.append({
            "run": run, "point": i, "tenant": r.get("tenant"),
            "context_length": p.get("context_length"), "concurrency": p.get("concurrency"),
            "id": r.get("id"), "status": r.get("status"),
            "t_sent": r.get("t_sent"), "t_end": r.get("t_end"),
            "prompt_tokens": r.get("prompt_tokens"), "output_tokens": r.get("output_tokens"),
            "ttft_ms": ms(r.get("ttft")), "tpot_ms": ms(r.get("tpot")), "e2e_ms": ms(r.get("e2e")),
            "queue_delay_ms": ms(r.get("queue_delay")),
            "itl_mean_ms": sum(itl) / len(itl) * 1e3 if itl else None,
            "itl_max_ms": max(itl) * 1e3 if itl else None,
        })
    return rows


def _telemetry_rows(run, doc):
    rows = []
    for smp in doc.get("samples") or []:
        gpus = smp.get("gpus") or []
        srv = smp.get("server") or {}
        vals = lambda k: [g[k] for g in gpus if g.get(k) is not None]  # noqa: E731
        power, temp, clock, mem = vals("power_w"), vals("temperature_c"), vals("sm_clock_mhz"), \
            vals("memory_used_mib")
        reasons = sorted({r for g in gpus for r in (g.get("throttle_reasons") or [])
                          if r != "gpu_idle"})
        rows.append({
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
    return rows


def load(paths):
    """Reads every run that paths name into four DataFrames (see the module's docstring)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs, points, requests, telemetry = [], [], [], []
    for path in find_runs([os.fspath(p) for p in paths]):
        doc = _read(path)
        name = _run_name(path)
        cfg = doc.get("config") or {}
        sim = (cfg.get("server") or {}).get("sim") or {}
        runs.append({
            "run": name, "file": path, "started_at": doc.get("started_at"),
            "benchmark": (cfg.get("benchmark") or {}).get("name"),
            "model": (doc.get("server") or {}).get("model"),
            "server_version": (doc.get("server") or {}).get("version"),
            "tool_version": (doc.get("tool") or {}).get("version"),
            "gpu": " + ".join(g.get("name", "") for g in doc.get("gpus") or []) or None,
            "simulated_gpu": sim.get("gpu") if sim.get("enabled") else None,
        })
        for i, p in enumerate(doc.get("points") or []):
            points.append(_point_row(name, i, p))
            requests += _request_rows(name, i, p)
        tpath = path[: -len(DETAILED)] + TELEMETRY if path.endswith(DETAILED) else None
        if tpath and os.path.exists(tpath):
            telemetry += _telemetry_rows(name, _read(tpath))
    return Results(pd.DataFrame(runs), pd.DataFrame(points), pd.DataFrame(requests),
                   pd.DataFrame(telemetry))
