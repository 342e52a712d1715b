"""trainstack's HPO trial runner: the entrypoint of every trial pod (one pod, one trial).

The pod runs `python /etc/trainstack/hpo/runner.py` with the batch's ConfigMap mounted next to
this file. The runner refuses an objective that breaks the 4-1/4-9 rules (syntax tree only, before
anything is imported or created), installs what the trial needs, runs exactly one trial against
the workspace's Optuna gRPC storage proxy and tells its outcome. It heartbeats from the moment it
claims its trial, so the storage server can fail the trial of a pod that died without telling.
docs/hpo.md ("How your objective runs") is the user-facing description; the names here are the
contract the rest of trainstack relies on.

Exit codes: 0 the trial ended COMPLETE or PRUNED; 1 the trial failed, or the runner could not run
one; 3 the objective file was refused (no trial was created).

Standard library and Optuna only, and Python 3.8 syntax: the seed's default CPU image runs 3.8.
"""

import ast
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import types

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 3

# The seed's reserved user attributes (4-4): the runner owns them, the objective may not write them.
RESERVED_USER_ATTRS = ("pod_name", "trialbatch_name", "gpu_name", "artifact_id", "artifact_removed")

# Trial system attributes the runner keeps; the workspace's storage server (templates/hpo/storage.py)
# reads the same names. The heartbeat also marks a trial as the runner's, which is what the storage
# server's reaper and the artifact cleanup are allowed to touch.
HEARTBEAT_ATTR = "trainstack:heartbeat"
STALE_AFTER_ATTR = "trainstack:stale_after_seconds"
# A finished trial cannot take attributes any more, so its removed artifacts are recorded on the
# study: `trainstack:artifact_removed:<trial number>` = true.
ARTIFACT_REMOVED_PREFIX = "trainstack:artifact_removed:"

DEFAULT_LOG_FLUSH_LINES = 5
DEFAULT_LOG_FLUSH_SECONDS = 30.0
DEFAULT_HEARTBEAT_SECONDS = 10.0
DEFAULT_STALE_AFTER_SECONDS = 60.0
DEFAULT_STORAGE_TIMEOUT_SECONDS = 60.0
DEFAULT_PIP_DIR = "/mnt/tmp-cache/.pip"

# The module name objectives import to reach the runner (`import trainstack_hpo`).
CONTROLLER_MODULE = "trainstack_hpo"


def say(message):
    print("trainstack-hpo: " + message, file=sys.stderr, flush=True)


class RunnerError(Exception):
    """A reason the runner cannot run a trial at all (exit 1, no trial told)."""


class Terminated(BaseException):
    """SIGTERM arrived: the pod is being deleted or evicted.

    A BaseException so that an objective's `except Exception:` does not swallow it.
    """


class Reaped(BaseException):
    """The storage server failed this trial while its pod was still alive (no heartbeat reached
    it for the trial's limit, e.g. the node was cut off): no result of it can be told any more,
    so the objective is stopped instead of running on for nothing.

    A BaseException for the same reason as Terminated.
    """


# ---------------------------------------------------------------------------------------------
# The 4-1 / 4-9 rules, checked on the syntax tree before the objective is imported.

RULE_IMPORTS = "4-1"
RULE_SECURITY = "4-9"

# Bare names that may not appear at all (called or passed around).
FORBIDDEN_NAMES = {
    "eval": "bare eval() is not allowed (a method call such as model.eval() is)",
    "exec": "exec() is not allowed",
    "__import__": "__import__() is not allowed; write an import statement inside objective()",
    "input": "input() is not allowed: a trial pod has no terminal",
    "raw_input": "raw_input() is not allowed: a trial pod has no terminal",
    "subprocess": "subprocess is not allowed",
}
OPEN_MESSAGE = "open() is only allowed as `with open(...) as f:`"
BUILTIN_MODULES = ("builtins", "__builtins__")


class Violation(object):
    def __init__(self, node, rule, message):
        self.line = getattr(node, "lineno", 1)
        self.column = getattr(node, "col_offset", 0) + 1
        self.rule = rule
        self.message = message

    def render(self, file_name):
        return "{}:{}:{}: {}: {}".format(file_name, self.line, self.column, self.rule, self.message)


class ObjectiveChecker(ast.NodeVisitor):
    def __init__(self):
        self.violations = []
        self.function_depth = 0
        # `open` names that are the callee of a `with` item: the one allowed use of open.
        self.with_opens = set()

    def refuse(self, node, rule, message):
        self.violations.append(Violation(node, rule, message))

    def visit_FunctionDef(self, node):
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_With(self, node):
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "open":
                self.with_opens.add(id(call.func))
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name == "subprocess" or alias.name.startswith("subprocess."):
                self.refuse(node, RULE_SECURITY, "importing subprocess is not allowed")
        self.check_import_place(node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if module == "subprocess" or module.startswith("subprocess."):
            self.refuse(node, RULE_SECURITY, "importing from subprocess is not allowed")
        for alias in node.names:
            if alias.name == "subprocess":
                self.refuse(node, RULE_SECURITY, "importing subprocess is not allowed")
            if module == "os" and alias.name in ("system", "*"):
                self.refuse(node, RULE_SECURITY, "os.system is not allowed")
            if module in BUILTIN_MODULES and (alias.name in FORBIDDEN_NAMES or alias.name in ("open", "*")):
                self.refuse(node, RULE_SECURITY, "importing {} from builtins is not allowed".format(alias.name))
        if module != "__future__":
            self.check_import_place(node)
        self.generic_visit(node)

    def check_import_place(self, node):
        if self.function_depth == 0:
            self.refuse(
                node,
                RULE_IMPORTS,
                "imports belong inside objective() (write `def objective(trial):` then `import ...` in its body)",
            )

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            if node.id in FORBIDDEN_NAMES:
                self.refuse(node, RULE_SECURITY, FORBIDDEN_NAMES[node.id])
            elif node.id == "open" and id(node) not in self.with_opens:
                self.refuse(node, RULE_SECURITY, OPEN_MESSAGE)

    def visit_Attribute(self, node):
        base = node.value
        if node.attr == "subprocess":
            self.refuse(node, RULE_SECURITY, FORBIDDEN_NAMES["subprocess"])
        elif isinstance(base, ast.Name) and base.id == "os" and node.attr == "system":
            self.refuse(node, RULE_SECURITY, "os.system is not allowed")
        elif isinstance(base, ast.Name) and base.id in BUILTIN_MODULES:
            if node.attr in FORBIDDEN_NAMES:
                self.refuse(node, RULE_SECURITY, FORBIDDEN_NAMES[node.attr])
            elif node.attr == "open":
                self.refuse(node, RULE_SECURITY, OPEN_MESSAGE)
        self.generic_visit(node)


def objective_signature_problem(tree):
    """Why the module lacks `def objective(trial):` at top level, as (node, message), or None."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "objective":
            args = node.args
            positional = list(getattr(args, "posonlyargs", [])) + list(args.args)
            if len(positional) != 1 or args.vararg or args.kwarg or args.kwonlyargs:
                return node, "objective must take exactly one argument: `def objective(trial):`"
            return None
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "objective":
            return node, "objective must be a plain function, not `async def`: `def objective(trial):`"
    return tree, "no top-level `def objective(trial):` found"


def check_objective(source, file_name):
    """The rule violations of an objective's source, rendered `file:line:column: rule: message`."""
    try:
        tree = ast.parse(source, filename=file_name)
    except SyntaxError as error:
        line = error.lineno or 1
        column = error.offset or 1
        return ["{}:{}:{}: syntax error: {}".format(file_name, line, column, error.msg)]
    checker = ObjectiveChecker()
    checker.visit(tree)
    violations = checker.violations
    problem = objective_signature_problem(tree)
    if problem is not None:
        violations.append(Violation(problem[0], RULE_SECURITY, problem[1]))
    violations.sort(key=lambda v: (v.line, v.column))
    return [v.render(file_name) for v in violations]


# ---------------------------------------------------------------------------------------------
# Installing what the trial needs. The root filesystem is read-only and HOME may not be writable,
# so everything goes to one writable directory put first on sys.path.


def pip_dir(batch):
    explicit = os.environ.get("TRAINSTACK_HPO_PIP_DIR")
    if explicit:
        return explicit
    tmp_cache = batch.get("tmp_cache_dir")
    if tmp_cache:
        return os.path.join(tmp_cache, ".pip")
    return DEFAULT_PIP_DIR


def pip_install(target, arguments):
    os.makedirs(target, exist_ok=True)
    env = dict(os.environ)
    env["PIP_CACHE_DIR"] = os.path.join(target, ".cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if importlib.util.find_spec("pip") is not None:
        command = [sys.executable, "-m", "pip", "install", "--target", target] + arguments
    elif shutil.which("uv"):
        # The seed's default images are uv images; some carry no pip module.
        env["UV_CACHE_DIR"] = os.path.join(target, ".cache")
        command = ["uv", "pip", "install", "--python", sys.executable, "--target", target] + arguments
    else:
        raise RunnerError("neither pip nor uv is available in the image to install " + " ".join(arguments))
    say("installing " + " ".join(arguments) + " into " + target)
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if result.returncode != 0:
        raise RunnerError("installing {} failed:\n{}".format(" ".join(arguments), tail(result.stdout, 40)))
    if target not in sys.path:
        sys.path.insert(0, target)


def tail(text, lines):
    return "\n".join(text.splitlines()[-lines:])


def installed_version(distribution):
    import importlib.metadata as metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def major_minor(version):
    return tuple(version.split(".")[:2])


def ensure_optuna(batch, target):
    """Installs the batch's optuna client pin unless the image has the same major.minor and grpcio.

    The pin is what trainstack validated against the workspace's server version; a client of the
    same minor series speaks the same wire format.
    """
    pin = batch.get("optuna_version")
    have = installed_version("optuna")
    grpc_present = importlib.util.find_spec("grpc") is not None
    if have is not None and grpc_present and (pin is None or major_minor(have) == major_minor(pin)):
        return
    if pin is None:
        raise RunnerError("the image has no usable optuna client and batch.json names no optuna_version")
    say("the image has optuna {} (grpcio {}); the batch pins {}".format(
        have or "none", "present" if grpc_present else "missing", pin))
    pip_install(target, ["optuna==" + pin, "grpcio", "protobuf"])
    for name in list(sys.modules):
        if name == "optuna" or name.startswith("optuna."):
            del sys.modules[name]


def requirement_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    return [line for line in lines if line]


# ---------------------------------------------------------------------------------------------
# The trial's note: the objective's log lines, in the layout optuna-dashboard reads.

NOTE_MAX_CHUNK = 2045


def note_keys(trial_id):
    return "dashboard:{}:note_ver".format(trial_id), "dashboard:{}:note_str:".format(trial_id)


def write_note(storage, study_id, trial_id, body):
    """Replaces a trial's note with `body`, as optuna_dashboard's save_note (0.21.0) stores it.

    The runner writes the attributes itself instead of calling save_note: importing
    optuna_dashboard pulls in scikit-learn and SciPy, which took 11 of a trial's 14 seconds on the
    test machine. tests/hpo_runner.rs reads the note back through the real dashboard, so a change
    of layout fails there.
    """
    version_key, chunk_prefix = note_keys(trial_id)
    version = next_note_version(storage, study_id, trial_id)
    storage.set_study_system_attr(study_id, version_key, version)
    chunks = [body[i:i + NOTE_MAX_CHUNK] for i in range(0, len(body), NOTE_MAX_CHUNK)]
    for index, chunk in enumerate(chunks):
        storage.set_study_system_attr(study_id, chunk_prefix + str(index), chunk)
    # The dashboard concatenates every chunk key: blank the ones a longer earlier body left.
    existing = [k for k in storage.get_study_system_attrs(study_id) if k.startswith(chunk_prefix)]
    for index in range(len(chunks), len(existing)):
        storage.set_study_system_attr(study_id, chunk_prefix + str(index), "")


def next_note_version(storage, study_id, trial_id):
    version_key, _ = note_keys(trial_id)
    return int(storage.get_study_system_attrs(study_id).get(version_key, 0)) + 1


class TrialLog(object):
    """Buffers log lines and writes them to the trial's note every `flush_lines` lines or
    `flush_seconds` seconds (the seed's TrialController saves every 5 lines), and at the end."""

    def __init__(self, trial, flush_lines, flush_seconds):
        self.trial = trial
        self.flush_lines = flush_lines
        self.flush_seconds = flush_seconds
        self.lines = []
        self.unsaved = 0
        self.last_flush = time.monotonic()
        self.lock = threading.Lock()

    def log(self, message, echo=True):
        text = str(message)
        if echo:
            print(text, flush=True)
        with self.lock:
            self.lines.extend(text.splitlines() or [""])
            self.unsaved += 1
            due = self.unsaved >= self.flush_lines or time.monotonic() - self.last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush_if_due(self):
        with self.lock:
            due = self.unsaved > 0 and time.monotonic() - self.last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush(self):
        with self.lock:
            if self.unsaved == 0:
                return
            # A code block keeps the lines as they were written; Markdown would join them.
            body = "```text\n" + "\n".join(self.lines) + "\n```"
            try:
                trial = self.trial
                write_note(trial.storage, trial.study._study_id, trial._trial_id, body)
            except Exception as error:
                # A storage hiccup must not fail the trial; the lines stay buffered for the next flush.
                say("could not save the trial note ({}); retrying at the next flush".format(error))
                return
            self.unsaved = 0
            self.last_flush = time.monotonic()


# ---------------------------------------------------------------------------------------------
# What the objective sees: `import trainstack_hpo; tc = trainstack_hpo.TrialController(trial)`.

RUNNING_TRIALS = {}


def refuse_reserved(key):
    if key in RESERVED_USER_ATTRS:
        raise ValueError(
            "user attribute {!r} is reserved by trainstack (reserved: {}); choose another key".format(
                key, ", ".join(RESERVED_USER_ATTRS)))


class TrialController(object):
    """The seed's TrialController (3-6-3): log lines into the trial's note, upload artifacts,
    set user attributes except the reserved ones."""

    def __init__(self, trial):
        run = RUNNING_TRIALS.get(getattr(trial, "_trial_id", None))
        if run is None:
            raise ValueError("TrialController needs the trial the runner passed to objective(trial)")
        self._run = run
        self._trial = trial

    def get_trial(self):
        return self._trial

    def log(self, message):
        self._run.log.log(message)

    def flush(self):
        self._run.log.flush()

    def set_user_attr(self, key, value):
        refuse_reserved(key)
        self._run.trial.set_user_attr(key, value)

    def upload_artifact(self, file_path):
        """Uploads a file to the workspace's artifact store and returns its artifact id.

        Only the study's top-N trials keep their artifacts (docs/hpo.md, "Artifacts").
        """
        return self._run.upload_artifact(file_path)


def install_controller_module():
    module = types.ModuleType(CONTROLLER_MODULE)
    module.__doc__ = "trainstack's trial controller for Optuna objectives run by the HPO runner."
    module.TrialController = TrialController
    module.RESERVED_USER_ATTRS = RESERVED_USER_ATTRS
    sys.modules[CONTROLLER_MODULE] = module


def guarded(trial):
    """The same trial (shared state, still an `optuna.trial.Trial`) with reserved keys refused."""
    import optuna

    class GuardedTrial(optuna.trial.Trial):
        def set_user_attr(self, key, value):
            refuse_reserved(key)
            optuna.trial.Trial.set_user_attr(self, key, value)

    view = GuardedTrial.__new__(GuardedTrial)
    view.__dict__ = trial.__dict__
    return view


# ---------------------------------------------------------------------------------------------
# One trial.


class TrialRun(object):
    def __init__(self, study, trial, batch, artifacts_dir):
        self.study = study
        self.trial = trial
        self.storage = study._storage
        self.artifacts_dir = artifacts_dir
        self.log = TrialLog(
            trial,
            int(batch.get("log_flush_lines") or DEFAULT_LOG_FLUSH_LINES),
            float(batch.get("log_flush_seconds") or DEFAULT_LOG_FLUSH_SECONDS),
        )
        self.heartbeat_seconds = float(batch.get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
        self.stopped = threading.Event()

    def artifact_store(self):
        from optuna.artifacts import FileSystemArtifactStore

        if not self.artifacts_dir:
            raise RuntimeError("no artifact store: TRAINSTACK_HPO_ARTIFACTS is not set")
        return FileSystemArtifactStore(self.artifacts_dir)

    def upload_artifact(self, file_path):
        import optuna

        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=self.artifact_store(), file_path=file_path, study_or_trial=self.trial)
        self.trial.set_user_attr("artifact_id", artifact_id)
        return artifact_id

    def beat(self):
        self.storage.set_trial_system_attr(self.trial._trial_id, HEARTBEAT_ATTR, time.time())

    def start_heartbeat(self):
        from optuna.exceptions import UpdateFinishedTrialError

        def loop():
            while not self.stopped.wait(self.heartbeat_seconds):
                try:
                    self.beat()
                except UpdateFinishedTrialError:
                    # Only the storage server's reaper finishes a trial its runner still runs.
                    say("the storage server has failed trial {}; stopping the objective".format(self.trial.number))
                    os.kill(os.getpid(), signal.SIGUSR1)
                    return
                except Exception as error:
                    # The storage server may be restarting; its reaper counts a trial's silence
                    # only from when it is back, and the limit allows several misses besides.
                    say("heartbeat failed: {}".format(error))
                self.log.flush_if_due()

        thread = threading.Thread(target=loop, name="trainstack-heartbeat", daemon=True)
        thread.start()

    def stop(self):
        self.stopped.set()


def gpu_name():
    if not shutil.which("nvidia-smi"):
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    names = []
    for line in result.stdout.splitlines():
        if line.strip() and line.strip() not in names:
            names.append(line.strip())
    return ", ".join(names) or None


def build(kind, spec):
    """A sampler or pruner from batch.json's `{"name": ..., "params": {...}}`."""
    import optuna

    module = optuna.samplers if kind == "sampler" else optuna.pruners
    name = (spec or {}).get("name")
    params = dict((spec or {}).get("params") or {})
    if not name:
        return None
    factory = getattr(module, name, None)
    if not isinstance(factory, type):
        raise RunnerError("batch.json: {} {!r} is not in optuna.{}".format(kind, name, module.__name__.split(".")[-1]))
    if kind == "sampler" and params.get("seed") is not None:
        # Every pod builds its own sampler; the same seed everywhere would propose the same
        # parameters in parallel pods, so each completion index gets its own.
        params["seed"] = int(params["seed"]) + int(os.environ.get("JOB_COMPLETION_INDEX") or 0)
    try:
        return factory(**params)
    except TypeError as error:
        raise RunnerError("batch.json: {} {}: {}".format(kind, name, error))


def claiming_storage(host, port, claim_attrs):
    """A GrpcStorageProxy whose trial claims carry the runner's first heartbeat.

    `study.ask()` claims a trial in one storage write: it creates a RUNNING trial, or turns an
    enqueued WAITING one RUNNING. A pod killed right after that write, before any attribute of
    its own landed, would leave a RUNNING trial nobody knows to be the runner's, so the storage's
    reaper could never fail it. Here a new trial is created with the heartbeat, its limit and the
    pod's names in the same write, and an enqueued trial gets a heartbeat just before it is
    turned RUNNING (a losing racer's heartbeat on it is as fresh and just as harmless).
    """
    import datetime

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import GrpcStorageProxy
    from optuna.trial import FrozenTrial, TrialState

    class ClaimingStorage(GrpcStorageProxy):
        def create_new_trial(self, study_id, template_trial=None):
            if template_trial is None:
                system_attrs, user_attrs = claim_attrs()
                # The start time is the pod's clock here, not the server's; it only shows as
                # the trial's start and duration, the reaper never reads it.
                template_trial = FrozenTrial(
                    number=-1, state=TrialState.RUNNING, value=None,
                    datetime_start=datetime.datetime.now(), datetime_complete=None,
                    params={}, distributions={}, user_attrs=user_attrs, system_attrs=system_attrs,
                    intermediate_values={}, trial_id=-1)
            return GrpcStorageProxy.create_new_trial(self, study_id, template_trial)

        def set_trial_state_values(self, trial_id, state, values=None):
            if state == TrialState.RUNNING:
                try:
                    GrpcStorageProxy.set_trial_system_attr(self, trial_id, HEARTBEAT_ATTR, time.time())
                except UpdateFinishedTrialError:
                    pass  # Finished meanwhile: the claim below is refused the same way.
            return GrpcStorageProxy.set_trial_state_values(self, trial_id, state, values)

    return ClaimingStorage(host=host, port=port)


def connect(address, timeout, claim_attrs):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RunnerError("TRAINSTACK_HPO_STORAGE must be host:port, got {!r}".format(address))
    storage = claiming_storage(host, int(port), claim_attrs)
    try:
        storage.wait_server_ready(timeout=timeout)
    except ConnectionError:
        raise RunnerError("the HPO storage at {} did not answer within {:.0f}s".format(address, timeout))
    return storage


def open_study(storage, batch):
    import optuna

    directions = [d.lower() for d in batch["directions"]]
    study = optuna.create_study(
        storage=storage,
        study_name=batch["study"],
        directions=directions,
        sampler=build("sampler", batch.get("sampler")),
        pruner=build("pruner", batch.get("pruner")),
        load_if_exists=True,
    )
    existing = [d.name.lower() for d in study.directions]
    if existing != directions:
        raise RunnerError("study {!r} exists with directions {} but the batch asks for {}".format(
            batch["study"], existing, directions))
    return study


def artifact_ids(trial):
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    ids = []
    for key, value in trial.system_attrs.items():
        if key.startswith(ARTIFACTS_ATTR_PREFIX) and value:
            meta = json.loads(value)
            if meta:
                ids.append(meta["artifact_id"])
    return ids


def keep_top_artifacts(study, store, top_n):
    """Removes the artifacts of the runner's finished trials outside the top N.

    Ranking: COMPLETE trials by their (first) objective value in its direction, ties to the lower
    trial number; FAIL and PRUNED trials have no final value and never rank. The ranked set only
    grows and each trial's key never changes, so a trial once outside the top N stays outside:
    concurrent runners may each remove what they see without a lock, removal is idempotent, and
    the runner whose tell came last sees every trial and leaves the final state.
    """
    from optuna.artifacts.exceptions import ArtifactNotFound
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    storage = study._storage
    study_attrs = storage.get_study_system_attrs(study._study_id)
    trials = [t for t in study.get_trials(deepcopy=False) if HEARTBEAT_ATTR in t.system_attrs]
    sign = 1.0 if study.directions[0] == StudyDirection.MINIMIZE else -1.0
    ranked = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE),
        key=lambda t: (sign * t.values[0], t.number),
    )
    keep = set(t.number for t in ranked[:top_n])
    removed = []
    for trial in trials:
        if not trial.state.is_finished() or trial.number in keep:
            continue
        if study_attrs.get(ARTIFACT_REMOVED_PREFIX + str(trial.number)):
            continue
        ids = artifact_ids(trial)
        if not ids:
            continue
        for artifact_id in ids:
            try:
                store.remove(artifact_id)
            except ArtifactNotFound:
                pass
        # Files first, mark second: a runner killed in between leaves work the next one redoes.
        storage.set_study_system_attr(study._study_id, ARTIFACT_REMOVED_PREFIX + str(trial.number), True)
        removed.append(trial.number)
    if removed:
        say("removed the artifacts of trials {} (outside the top {})".format(removed, top_n))


def load_objective(path):
    spec = importlib.util.spec_from_file_location("objective", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["objective"] = module
    spec.loader.exec_module(module)
    return module.objective


def stale_limit(batch):
    return float(batch.get("stale_after_seconds") or DEFAULT_STALE_AFTER_SECONDS)


def claim_trial(batch, user_attrs):
    """Connects to the workspace's storage, opens the batch's study and claims one trial.

    The trial is RUNNING with a heartbeat from the claim on (claiming_storage): a pod killed at
    any later point is failed by the storage server's reaper once its heartbeat stops.
    """
    timeout = float(batch.get("storage_timeout_seconds") or DEFAULT_STORAGE_TIMEOUT_SECONDS)
    address = os.environ.get("TRAINSTACK_HPO_STORAGE") or ""
    stale_after = stale_limit(batch)

    def claim_attrs():
        return {HEARTBEAT_ATTR: time.time(), STALE_AFTER_ATTR: stale_after}, dict(user_attrs)

    study = open_study(connect(address, timeout, claim_attrs), batch)
    return study, study.ask()


def tell(study, trial, state, values):
    """Tells the trial's outcome and returns the state it ended in, or None when the storage
    server had failed it already (study.tell refuses a finished trial with a ValueError that does
    not say why)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    if study._storage.get_trial(trial._trial_id).state.is_finished():
        return None
    try:
        if state == TrialState.COMPLETE:
            return study.tell(trial, values).state
        return study.tell(trial, state=state).state
    except UpdateFinishedTrialError:
        # Failed between the check and the tell.
        return None


def run_trial(batch, batch_dir, target):
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pod = os.environ.get("POD_NAME") or ""
    user_attrs = {"pod_name": pod, "trialbatch_name": batch["batch"]}
    gpu = gpu_name()
    if gpu:
        user_attrs["gpu_name"] = gpu
    study, trial = claim_trial(batch, user_attrs)
    storage = study._storage
    stale_after = stale_limit(batch)
    run = TrialRun(study, trial, batch, os.environ.get("TRAINSTACK_HPO_ARTIFACTS"))
    # An enqueued trial was claimed with its heartbeat only; a new one already has all of these.
    storage.set_trial_system_attr(trial._trial_id, STALE_AFTER_ATTR, stale_after)
    for key, value in user_attrs.items():
        trial.set_user_attr(key, value)
    RUNNING_TRIALS[trial._trial_id] = run
    say("trial {} of study {} (batch {}) runs on pod {}".format(trial.number, batch["study"], batch["batch"], pod or "?"))

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    def on_reaped(signum, frame):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        raise Reaped()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGUSR1, on_reaped)
    run.start_heartbeat()
    reaped_note = "trainstack: the storage server failed this trial: no heartbeat of this pod reached it within its {:g}s limit".format(
        stale_after)
    state = TrialState.FAIL
    values = None
    try:
        requirements = requirement_lines(os.path.join(batch_dir, batch.get("requirements") or "requirements.txt"))
        if requirements:
            pip_install(target, requirements)
        objective = load_objective(os.path.join(batch_dir, batch.get("objective") or "objective.py"))
        values = objective(guarded(trial))
        state = TrialState.COMPLETE
    except optuna.TrialPruned as pruned:
        state = TrialState.PRUNED
        run.log.log("trainstack: trial pruned{}".format(": {}".format(pruned) if str(pruned) else ""))
    except Terminated:
        run.log.log("trainstack: SIGTERM (pod deleted or evicted); the trial fails")
    except Reaped:
        run.log.log(reaped_note + "; the objective was stopped")
    except RunnerError as error:
        run.log.log("trainstack: {}".format(error))
    except Exception:
        text = traceback.format_exc()
        sys.stderr.write(text)
        run.log.log("trainstack: the objective raised:\n" + text.rstrip(), echo=False)

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    run.stop()
    try:
        told = tell(study, trial, state, values)
        if told is None:
            # The reaper's reason ends the note; this flush rewrites the note, so it says why again.
            if not run.log.lines or not run.log.lines[-1].startswith(reaped_note):
                run.log.log(reaped_note)
            state = TrialState.FAIL
        elif state == TrialState.COMPLETE and told != TrialState.COMPLETE:
            run.log.log("trainstack: objective returned {!r}, not a number per direction; the trial fails".format(values))
            state = told
    finally:
        run.log.flush()

    top_n = batch.get("top_n_artifacts")
    if top_n and run.artifacts_dir:
        try:
            keep_top_artifacts(study, run.artifact_store(), int(top_n))
        except Exception as error:
            # The trial's outcome is told; a later runner redoes the cleanup.
            say("artifact cleanup failed: {}".format(error))
    say("trial {} ended {}".format(trial.number, state.name))
    return EXIT_OK if state in (TrialState.COMPLETE, TrialState.PRUNED) else EXIT_FAILED


def main():
    batch_file = os.environ.get("TRAINSTACK_HPO_BATCH_FILE") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "batch.json")
    try:
        with open(batch_file) as handle:
            batch = json.load(handle)
    except (OSError, ValueError) as error:
        say("cannot read the batch file {}: {}".format(batch_file, error))
        return EXIT_FAILED
    batch_dir = os.path.dirname(os.path.abspath(batch_file))
    objective_name = batch.get("objective") or "objective.py"
    try:
        with open(os.path.join(batch_dir, objective_name), encoding="utf-8") as handle:
            source = handle.read()
    except OSError as error:
        say("cannot read the objective file: {}".format(error))
        return EXIT_FAILED
    violations = check_objective(source, objective_name)
    if violations:
        for line in violations:
            print(line, file=sys.stderr)
        say("the objective was refused by the 4-1/4-9 rules (docs/hpo.md); no trial was created")
        return EXIT_REFUSED

    target = pip_dir(batch)
    sys.path.insert(0, batch_dir)
    try:
        ensure_optuna(batch, target)
        install_controller_module()
        return run_trial(batch, batch_dir, target)
    except RunnerError as error:
        say(str(error))
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
