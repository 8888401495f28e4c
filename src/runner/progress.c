#include "runner/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double heartbeat_s(void)
{
    const char *env = getenv("TESTBENCH_HEARTBEAT_S");
    char *end;
    double s = env ? strtod(env, &end) : 0;
    return env && *end == '\0' && s >= 0.1 ? s : PROGRESS_HEARTBEAT_S;
}

void progress_begin(struct progress *p, bool enabled, const char *label, size_t total)
{
    memset(p, 0, sizeof(*p));
    p->enabled = enabled;
    p->label = label;
    p->total = total;
    p->start = p->last_t = clock_now();
    p->lines = !isatty(STDERR_FILENO);
    p->next_line = p->start + s_to_ns(heartbeat_s());
}

static void fmt_duration(char *buf, size_t len, double s)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, len, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    snprintf(buf, len, "%02ld:%02ld", t / 60, t % 60);
}

void progress_draw(struct progress *p)
{
    if (!p->enabled)
        return;
    mono_ns now = clock_now();
    double dt = ns_diff_s(p->last_t, now);
    if (dt > 0.2) {
        p->rate = (double)(p->tokens - p->last_tokens) / dt;
        p->last_tokens = p->tokens;
        p->last_t = now;
    }
    double elapsed = ns_diff_s(p->start, now);
    double eta = p->done ? elapsed * (double)(p->total - p->done) / (double)p->done : NAN;
    char el[48], et[48];
    fmt_duration(el, sizeof(el), elapsed);
    fmt_duration(et, sizeof(et), eta);
    if (p->lines) {
        /* A log or a pipe: no redrawing, one line now and then so a long point shows life. */
        if (now < p->next_line)
            return;
        p->next_line = now + s_to_ns(heartbeat_s());
        fprintf(stderr, "[%s] %zu/%zu done, %zu failed | %.0f tok/s | %s elapsed | ETA %s\n",
                p->label, p->done, p->total, p->failed, p->rate, el, et);
    } else {
        fprintf(stderr, "\r\033[K[%s] %zu/%zu done, %zu failed | %.0f tok/s | %s elapsed | ETA %s",
                p->label, p->done, p->total, p->failed, p->rate, el, et);
    }
    fflush(stderr);
}

void progress_end(struct progress *p)
{
    if (p->enabled && !p->lines)
        fprintf(stderr, "\r\033[K");
}

static double ms(double s)
{
    return s * 1e3;
}

/* "12.34 ms", or "–" when unknown. */
static const char *ms_or_dash(char *buf, size_t len, double s)
{
    if (!isfinite(s))
        return "–";
    snprintf(buf, len, "%.2f ms", ms(s));
    return buf;
}

/* "prompt + output 4096 | concurrency 8 | rate 2/s (poisson)", with the arrivals named as they
 * are: a trace's replay, a closed loop (no pacing under a cap), or all due at once.
 * context_lengths set each request's prompt + output (docs/CONFIG.md, "Window and prompt");
 * without them the prompts follow their own lengths and nothing is said. */
static void print_header(FILE *f, const struct point_info *pi)
{
    char ctx[48] = "", conc[32] = "none", arrivals[96];
    if (pi->context_length)
        snprintf(ctx, sizeof(ctx), " | prompt + output %d", pi->context_length);
    if (pi->concurrency)
        snprintf(conc, sizeof(conc), "%d", pi->concurrency);
    if (pi->trace)
        snprintf(arrivals, sizeof(arrivals), "arrivals from the trace (speed %g)", pi->trace_speed);
    else if (isfinite(pi->rate))
        snprintf(arrivals, sizeof(arrivals), "rate %g/s (%s)", pi->rate, arrival_name(pi->arrival));
    else if (pi->concurrency)
        snprintf(arrivals, sizeof(arrivals), "closed loop (no pacing)");
    else
        snprintf(arrivals, sizeof(arrivals), "all due at once");
    fprintf(f, "\n%s | tenant %s%s | concurrency %s | %s\n", pi->benchmark, pi->tenant, ctx, conc,
            arrivals);
}

/* One line on what ttft_sched adds to ttft: the wait between due and sent. */
static void print_ttft_sched_note(FILE *f, const struct point_info *pi,
                                  const struct point_summary *s)
{
    const struct dist *q = &s->queue_delay;
    if (!q->n)
        return;
    if (!(q->p99 > 1e-3)) {
        fprintf(f,
                "  ttft_sched = ttft from when each request was due; no request waited to be "
                "sent (queue_delay p99 %.2f ms)\n",
                ms(q->p99));
        return;
    }
    if (s->sessions)
        fprintf(f,
                "  ttft_sched = ttft from when each user was ready: it adds queue_delay p50 %.1f "
                "ms, p99 %.1f ms (a user slot, or the client sending late)\n",
                ms(q->p50), ms(q->p99));
    else if (pi->concurrency > 0)
        fprintf(f,
                "  ttft_sched = ttft from when each request was due: it adds queue_delay p50 %.1f "
                "ms, p99 %.1f ms, the wait for one of the %d concurrency slots%s\n",
                ms(q->p50), ms(q->p99), pi->concurrency,
                isfinite(pi->rate) || pi->trace ? ""
                                                : " (a closed loop: every request is due "
                                                  "at the start)");
    else
        fprintf(f,
                "  ttft_sched = ttft from when each request was due: it adds queue_delay p50 %.1f "
                "ms, p99 %.1f ms (no cap held them: the client sent them late)\n",
                ms(q->p50), ms(q->p99));
}

/* The SLO it is judged against, the verdict with its evidence, goodput and attainment (none
 * without an SLO), the warm-up left out, and why the point stopped. */
static void print_verdict(FILE *f, const struct point_info *pi, const struct point_summary *s)
{
    const struct slo_verdict *v = &s->verdict;
    if (s->warmup)
        fprintf(f, "  warm-up    %zu requests (%zu failed) left out of every figure here\n",
                s->warmup, s->warmup_failed);
    if (!v->has_slo) {
        fprintf(f, "  slo        no SLO set\n");
        return;
    }
    fprintf(f, "  slo        p%g of", v->percentile);
    const char *sep = " ";
    for (int o = 0; o < OBJ__COUNT; o++) {
        if (!v->obj[o].present)
            continue;
        fprintf(f, "%s%s <= %g ms", sep, slo_objective_name((enum slo_objective)o),
                v->obj[o].limit_ms);
        sep = ", ";
    }
    fprintf(f, "; a failed request is a miss\n");
    char line[512];
    slo_verdict_line(v, line, sizeof(line));
    fprintf(f, "  verdict    %s\n", line);
    fprintf(f, "  goodput    %.2f req/s   SLO attainment %.1f%% of %zu requests\n", s->goodput,
            s->slo_attainment_pct, s->issued);
    if (pi->ended_by && strcmp(pi->ended_by, "decided") == 0)
        fprintf(f,
                "  stopped    once the verdict was certain (requests.stop_when_decided), "
                "after %zu of %d requests\n",
                s->issued + s->warmup, pi->num_requests);
}

void progress_print_summary(FILE *f, const struct point_info *pi, const struct point_summary *s,
                            const struct telemetry_window *tw)
{
    print_header(f, pi);
    fprintf(f, "  requests   %zu completed, %zu failed in %.2f s   %.2f req/s\n", s->completed,
            s->failed, s->duration_s, s->request_throughput);
    fprintf(f, "  tokens/s   output %.1f   total %.1f   per user p50 %.1f\n", s->output_throughput,
            s->total_throughput, s->user_token_rate.p50);
    fprintf(f, "  %-10s %10s %10s %10s %10s\n", "ms", "mean", "p50", "p90", "p99");
    const struct {
        const char *name;
        const struct dist *d;
    } rows[] = {{"ttft", &s->ttft},
                {"ttft_sched", &s->ttft_sched},
                {"itl", &s->itl},
                {"tpot", &s->tpot},
                {"e2e", &s->e2e}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        fprintf(f, "  %-10s %10.2f %10.2f %10.2f %10.2f\n", rows[i].name, ms(rows[i].d->mean),
                ms(rows[i].d->p50), ms(rows[i].d->p90), ms(rows[i].d->p99));
    print_ttft_sched_note(f, pi, s);
    if (s->reasoning_requests) /* a reasoning model: the answer starts later than the text */
        fprintf(f, "  reasoning  %ld tokens in %zu requests   ttfa p50 %.2f ms, p99 %.2f ms\n",
                s->reasoning_tokens_total, s->reasoning_requests, ms(s->ttfa.p50), ms(s->ttfa.p99));
    if (s->sessions) {
        char first[32], later[32];
        fprintf(f,
                "  sessions   %zu (%zu turns skipped)   ttft p50 first turn %s, later turns %s\n",
                s->sessions, pi->session_turns_skipped,
                ms_or_dash(first, sizeof(first), s->ttft_first_turn.p50),
                ms_or_dash(later, sizeof(later), s->ttft_later_turns.p50));
    }
    print_verdict(f, pi, s);
    if (tw && isfinite(tw->gpu_power_mean_w))
        fprintf(f, "  gpu        %.0f W mean   %.0f J   %.3f J/token\n", tw->gpu_power_mean_w,
                tw->gpu_energy_j,
                s->output_tokens_total ? tw->gpu_energy_j / (double)s->output_tokens_total : NAN);
    if (tw && isfinite(tw->kv_cache_usage_max_pct))
        fprintf(f, "  server     KV cache max %.1f%%   prefix-cache hit rate %.1f%%\n",
                tw->kv_cache_usage_max_pct, tw->prefix_cache_hit_rate_pct);
    for (int c = 1; c < REQ__COUNT; c++)
        if (s->failed_by_class[c])
            fprintf(f, "  failed     %zu %s\n", s->failed_by_class[c],
                    req_status_name((enum req_status)c));
    if (pi->client_distorted)
        fprintf(f, "  WARNING: the client may have distorted these numbers: %s\n", pi->distortion);
    if (pi->ended_by && strcmp(pi->ended_by, "duration") == 0)
        fprintf(f, "  stopped    at requests.duration_s, after %zu of %d requests\n",
                s->issued + s->warmup, pi->num_requests);
    if (s->saturated)
        fprintf(
            f,
            "  WARNING: saturated: %.2f requests/s completed of the %.2f offered (below %.0f%%): "
            "the latencies include a growing queue; lower the rate or add capacity\n",
            s->achieved_rate, s->offered_rate, SATURATION_RATIO * 100);
    if (s->prompt_off_target)
        fprintf(f,
                "  WARNING: actual prompt lengths missed their targets by up to %.1f%% (> 2%%)\n",
                s->prompt_error_max_pct);
}
