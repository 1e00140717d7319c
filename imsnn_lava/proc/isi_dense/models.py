"""ProcessModels of ISIDense (floating_pt: float64 input; fixed_pt: int32 input)."""

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.proc.isi_dense.process import ISIDense
from imsnn_lava.proc_common import FixedSynapseModel, FloatSynapseModel


@implements(proc=ISIDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyISIDenseModelFloat(FloatSynapseModel):
    """Float64 synaptic input, computed by reference.synapse_step."""


@implements(proc=ISIDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyISIDenseModelFixed(FixedSynapseModel):
    """Integer synaptic input (int32), computed by reference.synapse_step on integer tables."""
