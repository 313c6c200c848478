"""Explores counter.increment in two threads (run under `coverage run`)."""

import frontrun
from counter import Counter, holds, increment

result = frontrun.explore_dpor(Counter, [increment, increment], holds, detect_io=False, preemption_bound=None)
print("verdict", result.verdict, result.num_explored)
