"""Policy decisions per second with the shipped default Cedar policy set.

Measures `CompiledPolicy.decide_batch` (one Cedar batch call per 1,000 decisions) beside a
baseline measured in the same run: one decision at a time through `CompiledPolicy.decide`.
Each decision builds its context (velocity over a small history), evaluates the policy and reads
the fired rules. Target: >= 5,000 decisions/s. Last line: policy_decisions_per_s=<N>.

Rates are decisions per CPU-second of this (single-threaded) process, so other work on a shared
machine does not skew them; the wall-clock rate and the load average are printed too.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from coffer.policy import DecisionContext, PastTransfer, RequestKind, Route, WithdrawalRequest, default_policy
from verdict import at_least, verdict

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
BATCH = 1000
TARGET_PER_S = at_least("policy decisions per CPU-second >= 5,000", 5000)  # issue 5
AMOUNTS = (5_000, 900_000, 5_000_000, 20_000_000, 150_000_000, 450_000_000, 700_000_000)


def workload(count: int) -> list[tuple[WithdrawalRequest, DecisionContext]]:
    history = tuple(PastTransfer(NOW_S - 60 * i, f"acct{i % 5}", "BTC", 1_000_000 * (i + 1), Route.HOT)
                    for i in range(8))
    items = []
    for index in range(count):
        account = f"acct{index % 50}"
        request = WithdrawalRequest(RequestKind.CLIENT_WITHDRAWAL, "BTC", AMOUNTS[index % len(AMOUNTS)] + index,
                                    f"bcrt1qdest{index % 97}", "auto", account, "normal", f"{index:032x}",
                                    NOW_S + 3600, f"client:{account}")
        context = DecisionContext(halted=False, account_frozen=index % 211 == 0,
                                  whitelisted_at_s=NOW_S - 2 * 86400 if index % 13 else NOW_S - 60,
                                  hot_balance_minor=300_000_000, history=history)
        items.append((request, context))
    return items


def measure(function, items, seconds: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(decisions per CPU-second, decisions per wall-clock second)."""
    done = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    while time.process_time() - cpu < seconds:
        function(items)
        done += len(items)
    return done / (time.process_time() - cpu), done / (time.perf_counter() - wall)


def main() -> int:
    policy = default_policy()
    items = workload(BATCH)
    policy.decide_batch(items[:10], NOW)  # warm up

    def one_at_a_time(batch):  # type: ignore[no-untyped-def]
        for request, context in batch:
            policy.decide(request, context, NOW)

    def batched(batch):  # type: ignore[no-untyped-def]
        policy.decide_batch(batch, NOW)

    baseline, baseline_wall = measure(one_at_a_time, items[:200], 2.0)
    rate, rate_wall = measure(batched, items, 3.0)
    decisions = policy.decide_batch(items, NOW)
    allowed = sum(d.allowed for d in decisions)
    refused = sum(d.refused for d in decisions)
    print(f"policy hash {policy.hash[:16]}, {len(policy.rules)} rules; mix: {allowed} allowed, {refused} refused, "
          f"{len(decisions) - allowed - refused} waiting for approvals per {len(decisions)}")
    print(f"wall clock: batched {rate_wall:.0f}/s, one at a time {baseline_wall:.0f}/s "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"baseline_per_s={baseline:.0f} (one decision at a time)")
    code = verdict([(TARGET_PER_S, rate)])
    print(f"policy_decisions_per_s={rate:.0f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
