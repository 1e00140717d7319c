"""Host-side processes shared by every backend: input source, recorders, counters."""
