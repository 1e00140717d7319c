"""The stock backend: ISI layers lowered onto Lava's stock processes only.

- `lower`  (numpy only): ModelFile -> StockGraph (populations, connections, timing);
- `graphsim` (numpy only): an integer simulator of a StockGraph, Lava's semantics;
- `counts` (numpy only): the lowered network's events from the original layers' spikes;
- `build`: a StockGraph as lava.proc.* processes (Lava imported inside functions);
- `run`: `run_stock`, the runner (build, run in chunks under the watchdog, always stop).

Importing this package imports nothing heavy.
"""
