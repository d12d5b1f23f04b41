"""Label-conditioned synthetic 12-lead ECGs (cardiac dipole projected onto the leads).

Modules: ``beats`` (wave components), ``rhythm`` (beat timing, f/F waves), ``dipole`` (Dower
projection), ``conditions`` (labels -> parameters), ``noise``, ``generate`` (signal), ``mix``
(label sets), ``dataset`` (WFDB records), ``measure`` (interval/amplitude measurements).
"""

from derc.synth.dataset import write_dataset
from derc.synth.generate import synthesize
from derc.synth.mix import sample_labels

__all__ = ["sample_labels", "synthesize", "write_dataset"]
