"""Detecting a model stuck repeating itself (reported with Q4 quants of Qwen3 models).

The generated text is looping when its tail is the same span (up to MAX_PERIOD
characters) repeated back to back, covering at least MIN_SPAN characters and at least
MIN_REPEATS copies. Checked every CHECK_EVERY characters on the last few KB only, so it
costs nothing per token.
"""

from __future__ import annotations


class RepetitionGuard:
    max_period = 300
    min_repeats = 4
    min_span = 240
    check_every = 32

    def __init__(self) -> None:
        self._tail = ""
        self._since_check = 0

    def feed(self, text: str) -> bool:
        """Add generated text; True when the output has started looping."""
        self._tail = (self._tail + text)[-(self.max_period * self.min_repeats + self.min_span) :]
        self._since_check += len(text)
        if self._since_check < self.check_every:
            return False
        self._since_check = 0
        return self.looping(self._tail)

    def looping(self, tail: str) -> bool:
        for period in range(1, self.max_period + 1):
            copies = max(self.min_repeats, -(-self.min_span // period))
            if period * copies > len(tail):
                break
            unit = tail[-period:]
            if tail[-period * copies :] == unit * copies:
                return True
        return False
