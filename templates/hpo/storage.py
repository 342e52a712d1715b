"""The workspace's Optuna storage: a gRPC proxy server over one journal file, and the reaper of
trials whose pod died.

The journal has exactly one writer (this process; the Deployment runs one replica and replaces
it with Recreate), so the file needs no lock shared between hosts.

Trial pods cannot be trusted to end their trials: a pod killed by SIGKILL, the OOM killer or a
lost node tells nothing. Each trial pod's runner (hpo/runner.py) claims its trial with a first
heartbeat already on it and then writes `trainstack:heartbeat` every few seconds. The reaper in
this process fails a RUNNING trial whose heartbeat did not change for the trial's limit, whoever
is or is not still running in its study. It judges silence by this process's own clock (when it
first saw the current heartbeat value), never by comparing the pod's timestamps with this
node's, so clock skew between nodes cannot fail a live trial, and a restart of this server (when
no pod could reach it) gives every trial a full limit again.

docs/hpo.md ("Killed pods") describes this for users. Tests run this same file with the
TRAINSTACK_HPO_* variables below set; the Deployment sets none of them.
"""
import datetime
import os
import sys
import threading
import time

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage, run_grpc_proxy_server
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

JOURNAL = os.environ.get("TRAINSTACK_HPO_JOURNAL", "/journal/journal.log")
HOST = os.environ.get("TRAINSTACK_HPO_HOST", "0.0.0.0")
PORT = int(os.environ.get("TRAINSTACK_HPO_PORT", "13000"))
# The limit of a trial that carries none (a pod killed between claiming an enqueued trial and
# recording its own limit). The same as the runner's default: six missed 10 s heartbeats.
STALE_AFTER_SECONDS = float(os.environ.get("TRAINSTACK_HPO_STALE_AFTER_SECONDS", "60"))
# A dead pod's trial ends FAIL at most one interval after its limit; a sweep reads every RUNNING
# trial of the journal, which costs little at this rate.
REAP_INTERVAL_SECONDS = float(os.environ.get("TRAINSTACK_HPO_REAP_INTERVAL_SECONDS", "10"))

# The runner's names (hpo/runner.py); a trial without the heartbeat is not a runner's trial
# (an ask/tell trial of the user's own) and is never touched.
HEARTBEAT_ATTR = "trainstack:heartbeat"
STALE_AFTER_ATTR = "trainstack:stale_after_seconds"
FAIL_REASON_ATTR = "trainstack:fail_reason"
# optuna-dashboard 0.21.0's note layout, as the runner writes it.
NOTE_MAX_CHUNK = 2045


def say(message):
    print("trainstack-hpo-storage: " + message, file=sys.stderr, flush=True)


class WorkspaceStorage(JournalStorage):
    """The journal storage, with one lock around every write to a trial.

    The reaper holds it from reading a trial to failing it, so no heartbeat or tell from a pod
    can land in between: a trial that beat or finished meanwhile is seen as such and left alone.
    """

    def __init__(self, backend):
        super().__init__(backend)
        self.trial_writes = threading.RLock()

    def set_trial_state_values(self, trial_id, state, values=None):
        with self.trial_writes:
            return super().set_trial_state_values(trial_id, state, values)

    def set_trial_system_attr(self, trial_id, key, value):
        with self.trial_writes:
            super().set_trial_system_attr(trial_id, key, value)

    def set_trial_user_attr(self, trial_id, key, value):
        with self.trial_writes:
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_param(self, trial_id, param_name, param_value_internal, distribution):
        with self.trial_writes:
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def set_trial_intermediate_value(self, trial_id, step, intermediate_value):
        with self.trial_writes:
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)


class Reaper(object):
    def __init__(self, storage, default_limit):
        self.storage = storage
        self.default_limit = default_limit
        # trial id -> (heartbeat value, monotonic time this process first saw that value)
        self.seen = {}

    def sweep(self):
        now = time.monotonic()
        running = set()
        for study in self.storage.get_all_studies():
            trials = self.storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
            for trial in trials:
                beat = trial.system_attrs.get(HEARTBEAT_ATTR)
                if beat is None:
                    continue
                running.add(trial._trial_id)
                last = self.seen.get(trial._trial_id)
                if last is None or last[0] != beat:
                    self.seen[trial._trial_id] = (beat, now)
                    continue
                limit = float(trial.system_attrs.get(STALE_AFTER_ATTR) or self.default_limit)
                if now - last[1] >= limit:
                    self.fail(study, trial._trial_id, beat, now - last[1], limit)
        for trial_id in list(self.seen):
            if trial_id not in running:
                del self.seen[trial_id]

    def fail(self, study, trial_id, beat, silent, limit):
        with self.storage.trial_writes:
            trial = self.storage.get_trial(trial_id)
            if trial.state != TrialState.RUNNING or trial.system_attrs.get(HEARTBEAT_ATTR) != beat:
                return
            pod = trial.user_attrs.get("pod_name") or "(unknown: it died before recording its name)"
            since = datetime.datetime.fromtimestamp(float(beat), datetime.timezone.utc)
            reason = "no heartbeat from pod {} since {} (silent {:.0f}s, limit {:g}s); the trial fails".format(
                pod, since.strftime("%Y-%m-%dT%H:%M:%SZ"), silent, limit)
            try:
                self.storage.set_trial_system_attr(trial_id, FAIL_REASON_ATTR, reason)
                self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except (UpdateFinishedTrialError, KeyError):
                return
        say("failed trial {} of study {}: {}".format(trial.number, study.study_name, reason))
        try:
            append_note(self.storage, study._study_id, trial_id, "trainstack: " + reason)
        except Exception as error:
            say("could not note the reason on trial {}: {}".format(trial.number, error))

    def run(self, interval):
        while True:
            time.sleep(interval)
            try:
                self.sweep()
            except Exception as error:
                # A journal that cannot be read now may be readable at the next sweep.
                say("reaper sweep failed: {}".format(error))


def append_note(storage, study_id, trial_id, line):
    """Appends a line to the trial's note in optuna-dashboard's layout (see the runner's
    write_note), so the dashboard shows why the trial failed."""
    version_key = "dashboard:{}:note_ver".format(trial_id)
    prefix = "dashboard:{}:note_str:".format(trial_id)
    attrs = storage.get_study_system_attrs(study_id)
    count = len([k for k in attrs if k.startswith(prefix)])
    before = "".join(attrs.get(prefix + str(i), "") for i in range(count))
    body = (before + "\n" if before else "") + line
    storage.set_study_system_attr(study_id, version_key, int(attrs.get(version_key, 0)) + 1)
    chunks = [body[i:i + NOTE_MAX_CHUNK] for i in range(0, len(body), NOTE_MAX_CHUNK)]
    for index, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, prefix + str(index), chunk)


storage = WorkspaceStorage(JournalFileBackend(JOURNAL))
reaper = Reaper(storage, STALE_AFTER_SECONDS)
threading.Thread(target=reaper.run, args=(REAP_INTERVAL_SECONDS,), name="trainstack-reaper", daemon=True).start()
say("reaping trials silent past their limit (default {:g}s), every {:g}s".format(
    STALE_AFTER_SECONDS, REAP_INTERVAL_SECONDS))
run_grpc_proxy_server(storage, host=HOST, port=PORT)
