"""Code that only the explored threads run: every line of it is executed."""


class Counter:
    def __init__(self) -> None:
        self.value = 0


def increment(counter: Counter) -> None:
    current = counter.value
    if current >= 0:
        counter.value = current + 1
    else:
        counter.value = 0  # pragma: no cover


def holds(counter: Counter) -> bool:
    return counter.value >= 1
