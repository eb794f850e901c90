"""Per-account login backoff, whatever address the attempts come from.

Every login attempt on an account counts as a failure the moment it starts (so that many
concurrent guesses cannot all pass before the first one fails); a success clears the
account. From the `failures`-th failure on, the account refuses attempts for a window that
starts at `base` seconds and doubles with each further failure, up to `longest`. Accounts
that do not exist are tracked the same way, so a refusal says nothing about whether an
account exists. At most `max_accounts` accounts are remembered: the least recently tried
is forgotten first, so probing many names cannot grow memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["LoginBackoff"]


class LoginBackoff:
    """Failure counts and refusal windows per account name (see the module docstring)."""

    __slots__ = ("failures", "base", "longest", "max_accounts", "_accounts")

    def __init__(
        self, *, failures: int = 5, base: float = 30.0, longest: float = 3600.0,
        max_accounts: int = 100_000,
    ) -> None:
        if failures < 1 or base <= 0 or longest < base or max_accounts < 1:
            raise ValueError("login backoff needs failures >= 1 and 0 < base <= longest")
        self.failures = failures
        self.base = base
        self.longest = longest
        self.max_accounts = max_accounts
        # name -> [failures so far, refused until (monotonic seconds)]
        self._accounts: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._accounts)

    def attempt(self, account: str, now: float) -> float:
        """Start a login attempt on `account` at `now`: 0.0 when it may go ahead (it is
        counted as a failure until `succeeded`), else the seconds it must wait."""
        entry = self._accounts.get(account)
        if entry is None:
            if len(self._accounts) >= self.max_accounts:
                self._accounts.popitem(last=False)
            entry = self._accounts[account] = [0, 0.0]
        else:
            self._accounts.move_to_end(account)
            if now < entry[1]:
                return entry[1] - now
        entry[0] += 1
        over = entry[0] - self.failures
        if over >= 0:
            entry[1] = now + min(self.longest, self.base * math.ldexp(1.0, min(over, 64)))
        return 0.0

    def succeeded(self, account: str) -> None:
        """A correct password: the account starts afresh."""
        self._accounts.pop(account, None)
