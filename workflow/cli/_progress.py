"""A progress bar on stderr, fed by the engine's token signals while one run lasts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

from workflow import signals

__all__ = ["MIN_TOKENS", "ProgressBar", "progress"]

#: Runs of fewer tokens show no bar: they are over before it would help.
MIN_TOKENS = 20


class ProgressBar:
    """Draw ``[#####.....] 50/100 tokens, 2 halted, 1 failed`` on one line of ``stream``.

    :param stream: where to draw (a terminal).
    :param total: how many tokens the run has to go through.
    :param width: the number of cells of the bar.
    :param interval: seconds between two redraws; the last state is always drawn.
    """

    def __init__(self, stream: TextIO, total: int, *, width: int = 30, interval: float = 0.1):
        self.stream = stream
        self.total = total
        self.width = width
        self.interval = interval
        self.completed = self.halted = self.failed = 0
        self._drawn = float("-inf")

    def __repr__(self) -> str:
        return f"<ProgressBar {self.done}/{self.total}>"

    @property
    def done(self) -> int:
        """How many tokens ended: completed, halted or failed."""
        return self.completed + self.halted + self.failed

    def line(self) -> str:
        """Return the bar as text."""
        filled = self.width * min(self.done, self.total) // max(self.total, 1)
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} tokens"
        if self.halted:
            text += f", {self.halted} halted"
        if self.failed:
            text += f", {self.failed} failed"
        return text

    def draw(self, *, force: bool = False) -> None:
        """Redraw the bar, unless it was drawn less than ``interval`` ago."""
        now = time.monotonic()
        if force or now - self._drawn >= self.interval:
            self._drawn = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self.draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    # Receivers of the engine's signals.

    def on_finished(self, sender: Any, **kwargs: Any) -> None:
        """Count a token whose tasks all ran."""
        self.completed += 1
        self.draw()

    def on_halted(self, sender: Any, **kwargs: Any) -> None:
        """Count a token that halted."""
        self.halted += 1
        self.draw()

    def on_error(self, sender: Any, **kwargs: Any) -> None:
        """Count a token whose task failed."""
        self.failed += 1
        self.draw()


@contextmanager
def progress(engine: Any, stream: TextIO, total: int) -> Iterator[ProgressBar | None]:
    """Show a :class:`ProgressBar` while the block runs ``engine``, when it is worth it.

    The bar is shown only when ``stream`` is a terminal and the run has at
    least :data:`MIN_TOKENS` tokens; its receivers are connected for
    ``engine`` alone, and only inside the block.
    """
    if total < MIN_TOKENS or not stream.isatty():
        yield None
        return
    bar = ProgressBar(stream, total)
    with ExitStack() as stack:
        stack.enter_context(signals.token_finished.connected_to(bar.on_finished, sender=engine))
        stack.enter_context(signals.token_halted.connected_to(bar.on_halted, sender=engine))
        stack.enter_context(signals.workflow_error.connected_to(bar.on_error, sender=engine))
        try:
            yield bar
        finally:
            bar.finish()
