"""A dense synthetic input for engine hosts: several ticks per symbol between moments,
equal times, a symbol that appears late, account terms and position changes inside the
rate limit's gap, over 40 one-minute bars; and a driver feeding it in random fetches."""

from __future__ import annotations

import random

from heatmap.engine.params import EngineParams
from heatmap.process.host import EngineHost, EpochOutput, MessageKind, RawRecord
from heatmap.schema import Account, Position, Price, encode, ms_to_datetime

PARAMS = EngineParams(bar_interval_s=60, timeframes={"5m": 300, "15m": 900}, min_periods=5)
KINDS: list[MessageKind] = [Price, Price, Account, Position]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]
T0_MS = 1_767_323_100_000  # on a minute boundary
# Accounts and their first desks; acct-2 moves between desk-a and desk-b when asked to.
ACCOUNTS = [("acct-1", "desk-a"), ("acct-2", "desk-a"), ("acct-3", None), ("acct-4", "desk-b")]


def dense_stream(seed: int, desk_moves: bool = True) -> list[RawRecord]:
    """Dense ticks (several per symbol between moments, equal times, a symbol appearing
    late), account terms and position changes within the rate limit's gap, 40 bars;
    ``desk_moves``: acct-2's terms move it between desk-a and desk-b at random."""
    rng = random.Random(seed)
    offsets = [0] * len(KINDS)
    records: list[tuple[int, RawRecord]] = []

    def add(source: int, ts_ms: int, message: Price | Position | Account) -> None:
        records.append((ts_ms, RawRecord(source, offsets[source], None, encode(message))))
        offsets[source] += 1

    for account, desk in ACCOUNTS:
        add(2, T0_MS, Account(account=account, ts=ms_to_datetime(T0_MS), equity=1e6, desk=desk))
    prices = {symbol: 100.0 * (index + 1) for index, symbol in enumerate(SYMBOLS)}
    ts_ms = T0_MS
    for _ in range(4000):
        ts_ms += rng.choice([0, 0, 1, 7, 250, 900])
        symbol = rng.choice(SYMBOLS[:4] if ts_ms < T0_MS + 600_000 else SYMBOLS)
        prices[symbol] *= 1 + rng.gauss(0, 0.004)
        add(SYMBOLS.index(symbol) % 2, ts_ms, Price(symbol=symbol, ts=ms_to_datetime(ts_ms),
                                                    price=prices[symbol], source="test"))
        draw = rng.random()
        if draw < 0.02:
            account = rng.choice([account for account, _ in ACCOUNTS])
            add(3, ts_ms, Position(account=account, symbol=rng.choice(SYMBOLS[:4]),
                                   ts=ms_to_datetime(ts_ms), qty=rng.uniform(-3000, 3000)))
        elif draw < 0.025:
            add(2, ts_ms, Account(account="acct-2", ts=ms_to_datetime(ts_ms),
                                  equity=rng.uniform(5e5, 2e6),
                                  desk=rng.choice(["desk-a", "desk-b"]) if desk_moves
                                  else "desk-a"))
    # Per source in offset order; the host merges them by (ts, source, offset).
    return [record for _, record in sorted(records, key=lambda item: (item[1].source_index,
                                                                      item[1].offset))]


def run_in_fetches(host: EngineHost, records: list[RawRecord], seed: int) -> list[EpochOutput]:
    """Feed ``records`` in random fetches of up to 300 per source, each source caught up
    once its records are in, cutting an epoch after every step."""
    rng = random.Random(seed)
    remaining = [sum(1 for record in records if record.source_index == index)
                 for index in range(len(KINDS))]
    by_source = [[record for record in records if record.source_index == index]
                 for index in range(len(KINDS))]
    fetches: list[list[RawRecord]] = []
    while any(by_source):
        fetch = []
        for queue in by_source:
            take = rng.randint(0, 300)
            fetch.extend(queue[:take])
            del queue[:take]
        fetches.append(fetch)
    outputs = []
    for fetch in [*fetches, []]:
        for record in fetch:
            remaining[record.source_index] -= 1
        host.step(fetch, [index for index, left in enumerate(remaining) if left == 0])
        outputs.append(host.cut_epoch())
    return outputs
