"""glassnet.inspect: the glass box; record, explain and diagnose what happens inside training.

``Recorder`` keeps statistics per layer and step through public hooks; ``diagnose`` turns a recorded run
into findings; ``explain_step`` tells one training step layer by layer; ``gradcheck`` compares gradients
with finite differences; ``report`` writes one self-contained HTML file.
"""

from glassnet.inspect.diagnose import RULES, Finding, Thresholds, diagnose, record_run
from glassnet.inspect.recorder import LayerInfo, LayerRecord, ParamRecord, Recorder
from glassnet.inspect.stats import TensorStats, summarize
