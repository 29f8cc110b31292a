#!/usr/bin/env python3
"""CPU per webhook, split between our crates, the AWS SDK, the HTTP stack and the emulator.

Reads `perf script -F comm,ip,sym` of a recording with call graphs on stdin and prints,
per part, its share of the samples and its milliseconds of CPU per webhook
(samples / frequency / webhooks). `make profile` runs it on the load generator:

    perf record -F 499 --call-graph dwarf,16384 -o perf.data -- LOAD_BINARY --bench
    perf script -F comm,ip,sym -i perf.data | python3 profile_split.py WEBHOOKS 499

Who owns a sample:
- its thread: the emulator's ("dynamodb"), the load generator's ("load"), set-up on the
  main thread; samples on the API's threads ("api") are split further:
- walking the stack from the leaf up, the first frame of a crate that does work of its own
  decides: the test harness's SDK interceptors, ours (the handlers, domain, store, lambda
  glue), the AWS SDK, or the HTTP stack and async runtime. Library frames on the way (allocator, std, serde, hashing, SHA-256,
  tracing) count to whoever called them: parsing our JSON is ours, signing a request the
  SDK's.
"""

import re
import sys
from collections import Counter

OWNERS = [
    (
        "the tests' SDK interceptors (request counter, conflict rule; not deployed)",
        re.compile(r"\bintegration_tests::"),
    ),
    (
        "our crates (parse, validate, plan, build items, answer)",
        re.compile(
            r"\b(bonus_[a-z_]+|order_webhook|member_api|nightly|notifications|clearing|hold_sweeper)::"
        ),
    ),
    (
        "AWS SDK (request building, SigV4, response parsing, its HTTP client)",
        re.compile(r"\baws_(sdk|smithy|sigv4|config|types|credential|runtime)"),
    ),
    (
        "HTTP server and async runtime (hyper, axum, tower, tokio)",
        re.compile(r"\b(hyper|hyper_util|h2|axum|axum_core|tower|tower_http|tokio|mio)::"),
    ),
]


def owner(comm: str, frames: list) -> str:
    if comm.startswith("dynamodb"):
        return "emulator (dynoxide and SQLite, on its own threads)"
    if comm == "load":
        return "load generator (reqwest; not the system)"
    if comm != "api":
        return "set-up on the main thread (tables, config, signing the bodies)"
    for sym in frames:
        for name, pattern in OWNERS:
            if pattern.search(sym):
                return name
    return "kernel and unattributed (syscalls, scheduler)"


def samples(lines):
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line[0].isspace():
            comm, frames = line.split()[0], []
        else:
            parts = line.split(None, 1)
            frames.append(parts[1].strip() if len(parts) > 1 else "")
    if comm is not None:
        yield comm, frames


def main() -> None:
    webhooks = int(sys.argv[1])
    frequency = float(sys.argv[2])
    counts: Counter = Counter()
    for comm, frames in samples(sys.stdin):
        counts[owner(comm, frames)] += 1
    total = sum(counts.values()) or 1
    print(f"PROFILE samples={total} at {frequency:.0f} Hz, webhooks={webhooks}")
    for name, n in counts.most_common():
        ms = n / frequency * 1000.0 / webhooks
        print(f"PROFILE {name}: {n * 100 / total:.1f}% of samples, {ms:.3f} ms CPU per webhook")


if __name__ == "__main__":
    main()
