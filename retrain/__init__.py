"""The retrain-and-register job: refit a monitored model on recent labelled data, compare
it with the champion on a held-out slice, register it in MLflow as ``challenger`` and move
``champion`` to it when it passes the promotion gate (contract section 5).

Run by hand with ``driftline retrain --model NAME``, or started by the daemon on an alert.
The pieces: ``retrain.job.run_retrain`` (the job), ``retrain.gate.compare`` (the promotion
gate), ``retrain.outcome`` (request, outcome and their alerts), ``retrain.registry`` (all
that talks to MLflow, which this package imports only when a job runs).
"""
