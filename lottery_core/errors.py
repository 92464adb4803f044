"""The one exception type users see: a one-line message naming what was wrong and what is allowed."""


class LotteryError(ValueError):
    """Bad input to the library. The message is one line, fit to print without a traceback."""


def choose(kind: str, value, allowed) -> None:
    """Raise `LotteryError` unless `value` is one of `allowed`, listing the valid choices."""
    allowed = sorted(allowed)
    if value not in allowed:
        raise LotteryError(f"unknown {kind} {value!r}; choose one of: {', '.join(map(str, allowed))}")


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message, stripped (its type's name when the message is
    empty), cut to `limit` characters: the part of a foreign error fit for a one-line message."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]
