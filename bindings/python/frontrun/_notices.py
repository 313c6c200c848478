"""frontrun's warning category.

Outside pytest, what frontrun has to say about a run that is weaker than it
could be (the preload library is not loaded, so native I/O is not seen) is
a :class:`FrontrunWarning`. Projects that turn warnings into errors can
filter it by category::

    filterwarnings =
        error
        ignore::frontrun.FrontrunWarning

Under the pytest plugin the same notices are not warnings at all: they are
said once in the ``frontrun`` section of the session's summary, so
``-W error`` never fails a test because of them.
"""

from __future__ import annotations


class FrontrunWarning(RuntimeWarning):
    """A notice from frontrun about how much of the program it can see."""
