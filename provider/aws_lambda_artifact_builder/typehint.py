"""Type aliases shared across modules."""

from __future__ import annotations

from collections.abc import Callable

#: Anything that takes one message, like ``print`` or a logger's ``info``.
T_PRINTER = Callable[[str], object]
