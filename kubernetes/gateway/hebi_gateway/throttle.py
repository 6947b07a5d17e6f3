"""Login throttling: growing delays after failed logins, per account and per client address.

From the ``free``-th failure of one key (an account name, or an address) on, each failure locks the key
for ``delay * 2**(failures - free)`` seconds, at most ``max_delay``. While a key is locked every login
through it is refused at once, the right password too: otherwise guessing would simply go on, only
slower to answer. Each admitted attempt counts as a failure from the start, so fifty guesses sent at
once are counted as they arrive. A key's failures are forgotten ``window`` seconds after its last one,
and a successful login clears its account's failures (not its address's: an attacker could otherwise
clear their address by logging in to an account of their own between guesses).

The tables are bounded (``entries`` keys each, the least recently failed dropped first), so a flood of
made-up names cannot grow the gateway's memory.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    last: float
    locked_until: float


class LoginThrottle:
    def __init__(self, *, free_per_account: int, free_per_address: int, delay: float, max_delay: float,
                 window: float, entries: int):
        self.free = {"account": free_per_account, "address": free_per_address}
        self.delay, self.max_delay, self.window, self.entries = delay, max_delay, window, entries
        self._tables: dict[str, OrderedDict[str, _Failures]] = {"account": OrderedDict(), "address": OrderedDict()}
        #: Replaceable in tests, so they need not wait for delays to pass.
        self.clock = time.monotonic

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    def retry_after(self, account: str, address: str) -> int:
        """Seconds until a login for ``account`` from ``address`` may be tried; 0 when it may be now."""
        now = self.clock()
        waits = [failures.locked_until - now for kind, key in (("account", account), ("address", address))
                 if (failures := self._current(kind, key, now)) is not None]
        return max(0, math.ceil(max(waits, default=0)))

    def attempt(self, account: str, address: str) -> int:
        """Admit a login attempt (0) or refuse it (the seconds to wait). An admitted attempt counts as a
        failure at once, until ``succeeded``: guesses sent in parallel are then counted as they arrive,
        not only when their passwords have been checked."""
        wait = self.retry_after(account, address)
        if wait:
            return wait
        now = self.clock()
        for kind, key in (("account", account), ("address", address)):
            table = self._tables[kind]
            failures = self._current(kind, key, now) or _Failures(0, now, now)
            failures.count += 1
            failures.last = now
            over = failures.count - self.free[kind]
            if over >= 0:
                failures.locked_until = now + min(self.max_delay, self.delay * 2 ** min(over, 64))
            table[key] = failures
            table.move_to_end(key)
            while len(table) > self.entries:
                table.popitem(last=False)
        return 0

    def succeeded(self, account: str, address: str) -> None:
        """The admitted attempt was right: the account's failures are cleared, the address's one taken back."""
        self._tables["account"].pop(account, None)
        failures = self._tables["address"].get(address)
        if failures is not None:
            failures.count -= 1
            if failures.count < self.free["address"]:
                failures.locked_until = failures.last

    def _current(self, kind: str, key: str, now: float) -> _Failures | None:
        table = self._tables[kind]
        failures = table.get(key)
        if failures is not None and now - failures.last > self.window and now >= failures.locked_until:
            del table[key]
            return None
        return failures
