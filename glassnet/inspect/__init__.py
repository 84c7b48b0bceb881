"""glassnet.inspect: the glass box; record, explain and diagnose what happens inside training.

``Recorder`` keeps statistics per layer and step through public hooks; ``diagnose`` turns a short run
into findings (``rules``); ``explain_step`` tells one training step layer by layer; ``gradcheck``
compares gradients with finite differences; ``report`` writes one self-contained HTML file;
``run_inspection`` does diagnose + report in one call (for the CLI).
"""

from glassnet.inspect.diagnose import diagnose, record_run, run_inspection
from glassnet.inspect.explain import ExplainedStep, explain_step
from glassnet.inspect.gradcheck import GradcheckResult, GradcheckRow, gradcheck
from glassnet.inspect.recorder import LayerInfo, LayerRecord, ParamRecord, Recorder
from glassnet.inspect.report import report
from glassnet.inspect.rules import RULES, Finding, Thresholds, judge
from glassnet.inspect.stats import TensorStats, summarize

__all__ = [
    "RULES",
    "ExplainedStep",
    "Finding",
    "GradcheckResult",
    "GradcheckRow",
    "LayerInfo",
    "LayerRecord",
    "ParamRecord",
    "Recorder",
    "TensorStats",
    "Thresholds",
    "diagnose",
    "explain_step",
    "gradcheck",
    "judge",
    "record_run",
    "report",
    "run_inspection",
    "summarize",
]
