"""vmlab.verify: the model checked against the real kernel (issue 5; docs/validation.md).

    corpus.py    the validation scenarios (vmlab/scenarios/corpus/*.vms)
    snapshot.py  what is recorded at a checkpoint, through the API both backends share
    trace.py     running a scenario on the model or the host and recording a trace
    compare.py   host trace vs model trace: the mismatch table
    golden.py    host traces stored as JSON (tests/data/golden/)
    command.py   the ``vmlab verify`` command
"""

from .command import verify
from .compare import KPF_COMPARED, Mismatch, compare_traces, format_table
from .corpus import corpus_names, corpus_path, resolve
from .golden import load_golden, save_golden
from .snapshot import FrameNumbering, take_snapshot
from .trace import run_trace

__all__ = ["verify", "KPF_COMPARED", "Mismatch", "compare_traces", "format_table",
           "corpus_names", "corpus_path", "resolve", "load_golden", "save_golden",
           "FrameNumbering", "take_snapshot", "run_trace"]
