"""ISIConv: an ISI-modulated (or plain, K = 1) conv synapse layer for R replicas."""

from imsnn_lava.proc_common import AbstractSynapseProcess


class ISIConv(AbstractSynapseProcess):
    """A conv synapse layer on R replicas; see AbstractSynapseProcess.

    Parameters (keyword only): shape_in (R, n_in); src (P, Q), table (K * Q, C_out),
    phi_max, c0, isi: the reference.SynapseTable arrays; num_steps T; num_periods (sample
    periods the per-sample Vars hold). Ports: s_in (R, n_in), a_out (R, P * C_out).
    Event-count Vars (imsnn_lava.counting): spike_counts, synops, active_updates (per
    sample), isi_histogram (per run); raster: the first sample's incoming spikes.
    """
