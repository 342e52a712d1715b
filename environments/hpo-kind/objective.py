"""Quick-start objective: find the minimum of (x - 2)^2 + (y - 3)^2.

trainstack's runner imports this file in each trial pod and calls objective(trial) once per
trial, against the tenant's workspace storage.
"""


def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    value = (x - 2) ** 2 + (y - 3) ** 2

    # An intermediate value lets the pruner stop trials that are going nowhere.
    trial.report(value, step=1)
    return value
