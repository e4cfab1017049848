"""A small process pool for inference: every worker loads the model once (``initializer``) and runs with one
torch thread; results come back as ``(task index, result)`` in completion order, with an optional tqdm bar.

A worker that dies (killed, out of memory, a crash in native code) takes only its own task with it: the task is
run once more in a fresh worker (``retries``), then reported as :class:`WorkerCrashed`; the other workers go on.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

logger = logging.getLogger(__name__)

#: Times a task is run again in a fresh worker after the worker running it died.
RETRIES = 1
#: Seconds a worker gets to exit after being told to stop, before it is terminated.
STOP_TIMEOUT_S = 10.0


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, out of memory) while running the task, on every try."""


class WorkerInitFailed(RuntimeError):
    """A worker's ``initializer`` raised (e.g. the model folder cannot be loaded): no task can run."""


def limit_threads(num_threads: int = 1) -> None:
    """One torch / OpenCV thread per worker process (the processes give the parallelism)."""
    import torch

    torch.set_num_threads(num_threads)
    try:
        import cv2

        cv2.setNumThreads(num_threads)
    except Exception:  # noqa: BLE001 - optional
        pass


def _worker_main(
    conn: Connection, func: Callable[[Any], Any], initializer: Callable[..., None], initargs: tuple
) -> None:
    """A worker: initialise once, then run ``(index, task)`` messages until ``None``; answers
    ``("result", index, result)`` or, once, ``("init_failed", traceback text)``."""
    try:
        initializer(*initargs)
    except BaseException:  # noqa: BLE001 - reported to the parent
        conn.send(("init_failed", traceback.format_exc(limit=-3)))
        return
    while True:
        message = conn.recv()
        if message is None:
            return
        index, task = message
        try:
            result = func(task)
        except Exception as exc:  # noqa: BLE001 - func should catch its own errors; never lose the worker
            result = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(("result", index, result))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: int | None = None


def run_tasks(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple = (),
    progress: str | None = None,
    retries: int = RETRIES,
) -> Iterator[tuple[int, Any]]:
    """Run ``func(task)`` for every task; ``workers`` <= 1 runs in this process (``initializer`` called once here).
    ``func`` must catch its own errors; a task whose worker died on each of its ``1 + retries`` tries yields
    :class:`WorkerCrashed`. Raises :class:`WorkerInitFailed` when a worker's initializer raises.
    ``progress``: a tqdm description (None: no bar)."""
    bar = None
    if progress is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=progress, unit="task")
    try:
        if workers <= 1 or len(tasks) <= 1:
            try:
                initializer(*initargs)
            except Exception as exc:  # noqa: BLE001 - the same error as a worker's
                raise WorkerInitFailed(f"{type(exc).__name__}: {exc}") from exc
            for i, task in enumerate(tasks):
                yield i, func(task)
                if bar is not None:
                    bar.update(1)
            return
        for item in _run_pool(func, tasks, min(workers, len(tasks)), initializer, initargs, retries):
            yield item
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _run_pool(
    func: Callable[[Any], Any],
    tasks: Sequence[Any],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple,
    retries: int,
) -> Iterator[tuple[int, Any]]:
    ctx = mp.get_context("spawn")  # no fork after torch/OpenCV threads started
    pending: deque[int] = deque(range(len(tasks)))
    tries = [0] * len(tasks)
    live: list[_Worker] = []

    def start() -> _Worker:
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(child_conn, func, initializer, initargs), daemon=True)
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        live.append(worker)
        return worker

    def retire(worker: _Worker) -> None:
        live.remove(worker)
        worker.conn.close()
        worker.process.join(timeout=STOP_TIMEOUT_S)

    try:
        while pending or any(w.task is not None for w in live):
            for worker in [w for w in live if w.task is None]:
                if not pending:  # nothing left for it: let it go
                    worker.conn.send(None)
                    retire(worker)
            while pending and len(live) < workers:
                start()
            for worker in live:
                if worker.task is None and pending:
                    worker.task = pending.popleft()
                    tries[worker.task] += 1
                    try:
                        worker.conn.send((worker.task, tasks[worker.task]))
                    except (BrokenPipeError, OSError):
                        pass  # died already: found below through its sentinel
            ready = wait([w.conn for w in live] + [w.process.sentinel for w in live])
            for worker in list(live):
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                message = None
                try:
                    if worker.conn.poll():
                        message = worker.conn.recv()
                except (EOFError, OSError):  # the pipe closed: the worker is gone
                    worker.process.join(timeout=STOP_TIMEOUT_S)
                if message is None and worker.process.is_alive():
                    continue
                if message is not None and message[0] == "init_failed":
                    raise WorkerInitFailed(f"a worker could not start: {message[1]}")
                if message is not None:
                    _, index, result = message
                    worker.task = None
                    yield index, result
                    continue
                # the worker died
                index = worker.task
                worker.process.join(timeout=STOP_TIMEOUT_S)
                code = worker.process.exitcode
                retire(worker)
                if index is None:
                    continue
                if tries[index] <= retries:
                    logger.warning(
                        "a worker died (exit code %s) on task %d; running it again in a fresh worker", code, index
                    )
                    pending.appendleft(index)
                else:
                    yield (
                        index,
                        WorkerCrashed(f"worker process died (exit code {code}) on each of {tries[index]} tries"),
                    )
    finally:
        for worker in live:
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in live:
            worker.process.join(timeout=STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
            worker.conn.close()
