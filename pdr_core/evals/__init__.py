"""Evaluations: every problem x method x setting as a stored run, then accuracy vs budget.

`spec` says what an evaluation is, `records` keeps it in the run store, `run` runs its
cells (resuming a killed evaluation where it stopped), `results` grades and summarises them,
`export` and `figure` show them, `estimate` prices an evaluation before it runs. A failed run
is reported as failed: never graded wrong, never dropped.
"""
