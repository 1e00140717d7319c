"""`imsnn sweep`: a grid of configs trained, exported in fixed point, simulated in Lava and
costed on both backends, point by point, resumable, with the Pareto fronts of the results.

- grid.py: `--grid KEY=V1,V2` parsing, the points (config name + overrides) and their names;
- runner.py: each point's steps as `imsnn` subprocesses, up to `--jobs` at once, skipped when
  their output exists (training resumes from its last epoch), stopped cleanly on Ctrl-C/SIGTERM;
- table.py: the results table with each point's front membership.

Nothing here imports torch or Lava: the steps run in their own processes.
"""
