#!/usr/bin/env python3
"""gen_workload_data.py - writes the small example workloads in configs/data/.

Everything is made up here from a fixed seed (nothing is copied or downloaded), so the files
are the same on every run and the project regenerates them itself:

  sharegpt_sample.json  ShareGPT-format conversations (1-3 user turns, long-tailed lengths)
  prompts_sample.jsonl  JSON lines: {"prompt", "output_tokens"} and {"messages"} records
  corpus_sample.txt     plain text for the corpus format
  trace_sample.jsonl    a Mooncake-shaped trace: timestamp (ms), input_length, output_length,
                        hash_ids (blocks of 512 tokens; four shared system prompts)
  trace_sample.csv      an Azure-shaped trace: TIMESTAMP (a date), ContextTokens,
                        GeneratedTokens

Usage: scripts/gen_workload_data.py [OUTDIR]   (default configs/data)
"""
import json
import math
import os
import random
import sys

SEED = 12
WORDS = (
    "the model server request token cache memory batch prompt answer question user system "
    "time latency throughput queue window context length document search result report "
    "data value table chart figure step plan test build run code file line error fix "
    "network disk power energy heat speed load trace replay sample mean median tail "
    "people city river market school garden kitchen music story travel weather history"
).split()
TOPICS = [
    "Explain how {a} relates to {b} in simple terms.",
    "Write a short note about {a} and {b} for a new colleague.",
    "What is the difference between {a} and {b}?",
    "Summarise the following text about {a}:",
    "Give three tips to improve {a} when {b} is limited.",
]


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def text(rng, words):
    """About `words` words of sentences of 6-18 words."""
    out, left = [], words
    while left > 0:
        n = min(left, rng.randint(6, 18))
        out.append(sentence(rng, n))
        left -= n
    return " ".join(out)


def lognormal_words(rng, mean, sd, lo, hi):
    s2 = math.log(1 + sd * sd / (mean * mean))
    v = rng.lognormvariate(math.log(mean) - s2 / 2, math.sqrt(s2))
    return max(lo, min(hi, int(v)))


def question(rng):
    q = rng.choice(TOPICS).format(a=rng.choice(WORDS), b=rng.choice(WORDS))
    return q + " " + text(rng, lognormal_words(rng, 60, 80, 5, 600))


def sharegpt(rng, n):
    items = []
    for i in range(n):
        turns = []
        for _ in range(rng.randint(1, 3)):
            turns.append({"from": "human", "value": question(rng)})
            turns.append({"from": "gpt", "value": text(rng, lognormal_words(rng, 150, 120, 10, 900))})
        items.append({"id": "sample-%03d" % i, "conversations": turns})
    return items


def jsonl(rng, n):
    lines = []
    for i in range(n):
        if i % 2 == 0:
            lines.append({"prompt": question(rng), "output_tokens": lognormal_words(rng, 120, 90, 8, 600)})
        else:
            lines.append({"messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": question(rng)},
                {"role": "assistant", "content": text(rng, lognormal_words(rng, 80, 60, 10, 400))},
                {"role": "user", "content": question(rng)},
            ]})
    return lines


def trace(rng, n):
    """Poisson arrivals at ~4/s; a quarter of requests share one of four system prompts of
    2-4 blocks, then blocks of their own."""
    rows, t, next_id = [], 0.0, 100
    prefixes = [list(range(k * 10, k * 10 + rng.randint(2, 4))) for k in range(4)]
    for _ in range(n):
        t += rng.expovariate(4.0) * 1000
        blocks = list(rng.choice(prefixes)) if rng.random() < 0.75 else []
        own = rng.randint(0, 3)
        blocks += list(range(next_id, next_id + own))
        next_id += own
        input_len = max(64, len(blocks) * 512 - rng.randint(0, 511))
        rows.append({"timestamp": int(t), "input_length": input_len,
                     "output_length": lognormal_words(rng, 120, 100, 4, 800), "hash_ids": blocks})
    return rows


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "configs/data"
    os.makedirs(out, exist_ok=True)
    rng = random.Random(SEED)
    with open(os.path.join(out, "sharegpt_sample.json"), "w") as f:
        json.dump(sharegpt(rng, 40), f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "prompts_sample.jsonl"), "w") as f:
        for line in jsonl(rng, 30):
            f.write(json.dumps(line) + "\n")
    with open(os.path.join(out, "corpus_sample.txt"), "w") as f:
        for _ in range(40):
            f.write(text(rng, rng.randint(40, 120)) + "\n\n")
    rows = trace(rng, 40)
    with open(os.path.join(out, "trace_sample.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(out, "trace_sample.csv"), "w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for r in rows[:20]:
            ms = r["timestamp"]
            f.write("2023-11-16 18:%02d:%02d.%03d0000,%d,%d\n" % (
                15 + ms // 60000, ms // 1000 % 60, ms % 1000, r["input_length"], r["output_length"]))


if __name__ == "__main__":
    main()
