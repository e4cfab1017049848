"""A small process pool for inference: every worker loads the model once (``initializer``) and runs with one
torch thread; results come back as ``(task index, result)`` in completion order, with an optional tqdm bar."""
from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

logger = logging.getLogger(__name__)


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, out of memory) while running the task."""


def limit_threads(num_threads: int = 1) -> None:
    """One torch / OpenCV thread per worker process (the processes give the parallelism)."""
    import torch

    torch.set_num_threads(num_threads)
    try:
        import cv2

        cv2.setNumThreads(num_threads)
    except Exception:  # noqa: BLE001 - optional
        pass


def run_tasks(func: Callable[[Any], Any], tasks: Sequence[Any], workers: int, initializer: Callable[..., None],
              initargs: tuple = (), progress: str | None = None) -> Iterator[tuple[int, Any]]:
    """Run ``func(task)`` for every task; ``workers`` <= 1 runs in this process (``initializer`` called once here).
    ``func`` must catch its own errors; a dead worker yields ``WorkerCrashed`` as the result of its tasks.
    ``progress``: a tqdm description (None: no bar)."""
    bar = None
    if progress is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=progress, unit="task")
    try:
        if workers <= 1 or len(tasks) <= 1:
            initializer(*initargs)
            for i, task in enumerate(tasks):
                yield i, func(task)
                if bar is not None:
                    bar.update(1)
            return
        ctx = mp.get_context("spawn")  # no fork after torch/OpenCV threads started
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=initializer,
                                 initargs=initargs) as pool:
            futures = {pool.submit(func, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    result = WorkerCrashed(f"worker process died: {exc}")
                yield i, result
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
