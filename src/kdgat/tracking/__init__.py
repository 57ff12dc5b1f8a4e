"""MLflow tracking: every stage that trains is an MLflow run, nested under one parent run per chain.

`session` is the stage job's side (a tracker that never fails a stage),
`worker` the process that talks to MLflow beside the training, `runs` what is
done through MLflow's client, `record` what a run holds (from the stage's own
files), `settings` where runs go, and `sync` the `kdgat track sync` command
that completes runs a dead server missed. Only `runs`, and the processes that
use it, import MLflow.
"""
