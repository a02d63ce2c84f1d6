"""Celery's logs in the project's format, with the trip a task works on (docs/operations.md, "Logs").

Left alone, a worker and beat replace the root logger's handlers with Celery's own format, so production's
JSON lines would stop at the worker. Answering `setup_logging` keeps Django's LOGGING (and its context
filter) and applies only the level given with `--loglevel` (`make run` passes WARNING).

A task whose arguments name a `trip_id` (by keyword or by position) logs it on every line it writes:
bound in `task_prerun`, unbound in `task_postrun`, both sent in the thread that runs the task.
"""

from __future__ import annotations

import functools
import inspect
import logging
import logging.config
from collections.abc import Callable
from contextvars import Token

from celery import Task
from celery.signals import setup_logging, task_postrun, task_prerun

from backend.request_context import trip_id_var

# Task id -> the token that restores the trip id once the task is done (one entry per running task).
_bound_trips: dict[str, Token[str | None]] = {}


@setup_logging.connect
def use_project_logging(loglevel: int | str | None = None, **_: object) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        level = logging.getLevelName(loglevel.upper()) if isinstance(loglevel, str) else loglevel
        logging.getLogger().setLevel(level)
        # LOGGING names Celery's own logger at INFO; --loglevel is the operator's word for this process.
        logging.getLogger("celery").setLevel(level)


@functools.cache
def _signature(task_run: Callable[..., object]) -> inspect.Signature | None:
    try:
        return inspect.signature(task_run)
    except (TypeError, ValueError):
        return None


def task_trip_id(task: Task, args: tuple[object, ...], kwargs: dict[str, object]) -> object | None:
    """The `trip_id` this call of the task was given, if its signature has one."""
    if "trip_id" in kwargs:
        return kwargs["trip_id"]
    signature = _signature(task.run)
    if signature is None or "trip_id" not in signature.parameters:
        return None
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return None
    return bound.arguments.get("trip_id")


@task_prerun.connect
def bind_task_trip(
    task_id: str | None = None,
    task: Task | None = None,
    args: tuple[object, ...] | None = None,
    kwargs: dict[str, object] | None = None,
    **_: object,
) -> None:
    if task_id is None or task is None:
        return
    trip_id = task_trip_id(task, tuple(args or ()), dict(kwargs or {}))
    if trip_id is not None:
        _bound_trips[task_id] = trip_id_var.set(str(trip_id))


@task_postrun.connect
def unbind_task_trip(task_id: str | None = None, **_: object) -> None:
    token = _bound_trips.pop(task_id, None) if task_id is not None else None
    if token is not None:
        trip_id_var.reset(token)
