"""The objective of `trainstack smoke`'s hpo check (docs/smoke.md, "hpo").

Each trial logs one line through the runner's TrialController (it lands in the trial's note) and
uploads one small file to the workspace's artifact store, so the check can prove both paths. The
value is cheap and deterministic per suggestion: the check is about the plumbing, not the search.
It follows the 4-1/4-9 rules the runner enforces on every objective.
"""


def objective(trial):
    import os
    import tempfile

    import trainstack_hpo

    controller = trainstack_hpo.TrialController(trial)
    x = trial.suggest_float("x", -1.0, 1.0)
    pod = os.environ.get("POD_NAME", "?")
    controller.log("trainstack smoke: trial {} ran on pod {} with x={:.4f}".format(trial.number, pod, x))
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "smoke-trial-{}.txt".format(trial.number))
        with open(path, "w") as handle:
            handle.write("trainstack smoke artifact of trial {} (pod {})\n".format(trial.number, pod))
        controller.upload_artifact(path)
    return x * x
