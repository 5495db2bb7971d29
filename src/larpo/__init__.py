"""larpo: language-model alignment as retriever optimization (LarPO)."""

__version__ = "0.1.0"

import time as _time

# when this process began larpo's work (the first larpo import, before Hydra and torch load): the
# start of a run's `startup` phase. A sweep job that runs in the same process after another one
# starts where that one ended (`larpo.run.fit` moves it).
process_started = _time.time()
