"""The deployment math, each equation once (numpy + scipy only; never Lava, never torch).

    isi.py        the ISI modulation, its lookup table, the ISI counter and bin
    synapse.py    connectivity, fan-out, the per-bin table, one synapse step (specification
                  and fast integer kernel), SynapseStepper (counters + one-step buffer)
    lif.py        Lava's LIF, floating and bit-accurate fixed point
    events.py     the event definitions and per-step counting (SynapseCounts, EventCounts)
    counting.py   event counts from spike trains
    reference.py  the reference simulator of a whole network
    encoding.py   the seeded rate code shared by training and Lava
"""
