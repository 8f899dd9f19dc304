"""Background work for the window: the model thread and short file tasks.

The ``Llama`` instance is not thread-safe, so one ``ModelWorker`` on one ``QThread``
owns the backend for its whole life; the window talks to it only through queued
signals and the thread-safe CancelToken. Engine events are re-emitted unchanged as
``event(object)``; widgets are touched only on the UI thread. The thread's one SQLite
connection is opened at its first run and closed when the thread stops (``shutdown``);
planning reads no database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from app import paths
from app.agent.engine import Engine
from app.agent.events import Event, RunCancelled, RunFailed, StepFinished
from app.agent.planning import (
    Planner,
    RunPlan,
    Speed,
    estimate_seconds,
    loaded_context,
    run_context,
)
from app.documents.model import Document
from app.errors import Cancelled
from app.errors import describe_error as _describe
from app.llm.backend import Backend, CancelToken
from app.llm.factory import open_backend
from app.records import Mode, Question
from app.resources import sample_document
from app.settings import Settings
from app.store.database import Store, open_database

log = logging.getLogger("app.gui")

# Assumed CPU throughput for the first estimate, before a step has been measured.
# The bundled sample (8 pages, about 1,000 tokens) fits the demo model's 4K context in one
# pass; read in chunks this size it takes 4 memory steps, so a first ask shows the
# memory agent at work in well under a minute (the demo model only, settings untouched).
SAMPLE_CHUNK_TOKENS = 300
SAMPLE_MAX_NEW_TOKENS = 128  # each step's output: the demo model's memory is not better longer


def is_sample(document: Document | None) -> bool:
    if document is None:
        return False
    try:
        return Path(document.path).resolve() == sample_document().resolve()
    except OSError:
        return False


def describe_error(error: BaseException) -> str:
    """app.errors.describe_error, logged to the GUI's logger."""
    return _describe(error, "a background task", log)


class ModelWorker(QObject):
    """Lives on the model thread; every slot runs there."""

    model_loaded = Signal(str, bool)  # model name, is the demo model
    model_failed = Signal(str)
    model_load_progress = Signal(float)  # llama.cpp's own load progress, 0..1
    model_load_cancelled = Signal()
    model_unloaded = Signal()
    model_reloading = Signal(str)  # a resume loads the model again with its run's context
    planned = Signal(object, float)  # RunPlan, estimated seconds
    plan_failed = Signal(str)
    engine_event = Signal(object)  # an engine event
    busy_changed = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.backend: Backend | None = None
        self.settings: Settings | None = None
        self.cancel_token = CancelToken()
        self.load_cancel = CancelToken()
        self.loading = False  # a load was requested and has not ended
        self.plan_description = ""  # the automatic placement of the loaded model, in words
        self.speed = Speed()  # what estimates assume: measured once this model has run
        self.store: Store | None = None  # this thread's connection, opened at its first run
        self.connections_opened = 0

    @Slot(object)
    def load_model(self, settings: Settings) -> None:
        if (
            self.backend is not None
            and self.settings is not None
            and self.settings.load_key() == settings.load_key()
        ):
            # Only what runs use changed (sampling, budgets, mode): no reload.
            self.settings = settings
            self.loading = False  # prepare_load's flag: no load follows it
            self.model_loaded.emit(self.backend.identity.name, self._is_demo())
            return
        self.unload()
        cancel = self.load_cancel
        try:
            self._open(settings, cancel)
        except Cancelled:
            self.model_load_cancelled.emit()
        except Exception as error:  # noqa: BLE001 - reported to the user, never lost
            self.model_failed.emit(describe_error(error))
        finally:
            self.loading = False

    def _open(self, settings: Settings, cancel: CancelToken, n_ctx: int = 0) -> None:
        """Load the model ``settings`` ask for, with an ``n_ctx`` of its own when given
        (``settings`` stay what later asks are planned with)."""
        loaded = settings.with_changes(n_ctx=n_ctx) if n_ctx else settings
        self.backend = open_backend(loaded, progress=self.model_load_progress.emit, cancel=cancel)
        self.settings = settings
        plan = getattr(self.backend, "plan", None)
        self.plan_description = plan.describe() if plan is not None else ""
        self._recall_speed()
        self.model_loaded.emit(self.backend.identity.name, self._is_demo())

    def prepare_load(self) -> None:
        """Called on the UI thread just before ``load_model`` is requested: a Cancel
        clicked from now on stops that load, even before the model thread starts it."""
        self.load_cancel = CancelToken()
        self.loading = True

    def _is_demo(self) -> bool:
        return bool(self.backend and "(demo)" in self.backend.identity.name)

    def _demo_sample(self, document: Document | None) -> bool:
        """The first-run case: the demo model on the bundled sample, automatic settings."""
        s = self.settings
        return (
            self._is_demo()
            and s is not None
            and not s.chunk_tokens
            and s.mode == Mode.AUTO
            and is_sample(document)
        )

    def _run_settings(self, document: Document | None = None) -> Settings:
        assert self.backend is not None and self.settings is not None
        settings = self.settings
        if self._is_demo() and not settings.max_new_tokens:
            # The demo model rambles; a cap keeps a sample run to a minute or two on a CPU.
            settings = settings.with_changes(max_new_tokens=384)
        if self._demo_sample(document):
            settings = settings.with_changes(chunk_tokens=SAMPLE_CHUNK_TOKENS)
            if not self.settings.max_new_tokens:
                settings = settings.with_changes(max_new_tokens=SAMPLE_MAX_NEW_TOKENS)
        return settings

    def _store(self) -> Store:
        """The thread's one connection (opened again only if the database setting moved)."""
        if self.store is not None and self.store.path != paths.database_path():
            self.store.close()
            self.store = None
        if self.store is None:
            self.store = open_database()
            self.connections_opened += 1
        return self.store

    @Slot(object, object)
    def plan(self, document: Document, question: Question) -> None:
        if self.backend is None:
            self.plan_failed.emit("The model is not loaded yet.")
            return
        try:
            demo_sample = question.mode == Mode.AUTO and self._demo_sample(document)
            if demo_sample:
                question = replace(question, mode=Mode.MEMORY_AGENT)
            planner = Planner(self.backend, self._run_settings(document))
            plan = planner.plan(document, question)
            if demo_sample:
                plan = replace(
                    plan,
                    reason=f"the sample is read in {len(plan.chunks)} chunks so you can watch "
                    "the memory agent (a demo setting; it would fit one pass)",
                )
            self.planned.emit(plan, estimate_seconds(plan, self.speed))
        except Exception as error:  # noqa: BLE001
            self.plan_failed.emit(describe_error(error))

    @Slot(object, int, int, object, object)
    def ask(
        self,
        document: Document,
        document_id: int,
        session_id: int,
        plan: RunPlan,
        cancel: CancelToken | None = None,
    ) -> None:
        """Read ``plan``; ``cancel`` is made by the caller when it asks (the window's
        Cancel may come before this queued call starts), else here."""
        self._drive(
            lambda engine, token: engine.ask(document, document_id, session_id, plan, token),
            cancel,
            document,
        )

    @Slot(int, object, object)
    def resume(self, run_id: int, document: Document, cancel: CancelToken | None = None) -> None:
        self._drive(
            lambda engine, token: engine.resume(run_id, document, token),
            cancel,
            prepare=lambda: self._load_run_context(run_id),
        )

    def _load_run_context(self, run_id: int) -> bool:
        """A run read with more context than the model is loaded with goes on with its
        own, as the command line's resume does: the model is loaded again with the run's
        context. False, said by an event, when this machine cannot (the model is then
        loaded again as it was) or the load is cancelled."""
        assert self.backend is not None and self.settings is not None
        run = self._store().get_run(run_id)
        need, loaded = run_context(run), loaded_context(self.backend)
        if self.settings.backend != "local" or not loaded or need <= loaded:
            return True
        settings = self.settings
        self.unload()
        self.model_reloading.emit(
            f"Loading the model again with run {run_id}'s {need:,}-token context (it was "
            f"loaded with {loaded:,})… (Cancel stops it)"
        )
        self.load_cancel, self.loading = CancelToken(), True
        try:
            self._open(settings, self.load_cancel, n_ctx=need)
            return True
        except Cancelled:
            self.model_load_cancelled.emit()
            self.engine_event.emit(RunCancelled(run_id, len(run.steps)))
            return False
        except Exception as error:  # noqa: BLE001 - reported to the user, never lost
            reason = describe_error(error)
        finally:
            self.loading = False
        self.loading = True  # the model as it was: a Cancel stops this load too
        self.load_model(settings)
        again = (
            f"The model is loaded again with {loaded:,} tokens."
            if self.backend is not None
            else "The model is not loaded now: Model > Load model loads it."
        )
        self.engine_event.emit(
            RunFailed(
                run_id,
                f"Run {run_id} was read with a {need:,}-token context, and the model could not "
                f"be loaded with it on this machine: {reason}\n\n{again} To go on with this "
                "run, free memory (close other programs) and press Resume again; or ask the "
                "question again: it is then planned for the context the model loads with here.",
                len(run.steps),
            )
        )
        return False

    def _drive(
        self,
        start: Callable[[Engine, CancelToken], Iterator[Event]],
        cancel: CancelToken | None,
        document: Document | None = None,
        prepare: Callable[[], bool] | None = None,
    ) -> None:
        """Run the engine's events through ``start``, busy meanwhile; ``prepare`` first,
        if given (the run goes on only when it returns True)."""
        if self.backend is None:
            self.engine_event.emit(RunFailed(0, "The model is not loaded yet.", 0))
            return
        self.cancel_token = cancel or CancelToken()
        self.busy_changed.emit(True)
        try:
            if prepare is not None and not prepare():
                return
            engine = Engine(self.backend, self._store(), self._run_settings(document))
            for event in start(engine, self.cancel_token):
                if isinstance(event, StepFinished):
                    self._learn_speed(event)
                self.engine_event.emit(event)
        except Exception as error:  # noqa: BLE001 - e.g. the store could not be opened
            self.engine_event.emit(RunFailed(0, describe_error(error), 0))
        finally:
            self.busy_changed.emit(False)

    def _learn_speed(self, event: StepFinished) -> None:
        step = event.step.stats
        measured = Speed.measured(
            [(step.prompt_tokens, step.prompt_ms, step.completion_tokens, step.generation_ms)]
        )
        if measured is not None:
            self.speed = measured

    def _recall_speed(self) -> None:
        """The loaded model's speed as its latest stored steps measured it (after a
        restart too): the first estimate is then this machine's, not a guess."""
        assert self.backend is not None
        identity = self.backend.identity
        try:
            steps = self._store().recent_step_speeds(identity.backend, identity.path)
        except Exception:  # noqa: BLE001 - an estimate never stops a model from loading
            log.warning("could not read the model's past speed", exc_info=True)
            steps = []
        self.speed = Speed.measured(steps) or Speed()

    def cancel(self) -> None:
        """Called from the UI thread: the tokens are thread-safe. Stops a run, or a model
        load at llama.cpp's next progress report."""
        self.cancel_token.cancel()
        if self.loading:
            self.load_cancel.cancel()

    @Slot()
    def unload(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
            self.settings = None
            self.model_unloaded.emit()

    @Slot()
    def shutdown(self) -> None:
        """The thread's last call: the model unloaded, its database connection closed."""
        self.unload()
        if self.store is not None:
            self.store.close()
            self.store = None


class ModelThread:
    """Starts the worker's thread and stops it cleanly on close."""

    def __init__(self) -> None:
        self.thread = QThread()
        self.thread.setObjectName("model")
        self.worker = ModelWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self) -> None:
        if not self.thread.isRunning():  # already stopped: a queued call would never return
            return
        self.worker.cancel()
        # Unload on the model thread (it owns the Llama), then end the thread's loop.
        from PySide6.QtCore import QMetaObject, Qt

        QMetaObject.invokeMethod(
            self.worker, "shutdown", Qt.ConnectionType.BlockingQueuedConnection
        )
        self.thread.quit()
        self.thread.wait()


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str, object)  # message, the exception
    progress = Signal(int, int)


class Task(QRunnable):
    """A short job (opening a document) on Qt's thread pool, reporting back by signal."""

    def __init__(self, job: Callable[[Callable[[int, int], None]], Any]) -> None:
        super().__init__()
        self.job = job
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            result = self.job(self.signals.progress.emit)
        except Exception as error:  # noqa: BLE001
            self.signals.failed.emit(describe_error(error), error)
        else:
            self.signals.done.emit(result)


def start_task(task: Task) -> None:
    QThreadPool.globalInstance().start(task)
