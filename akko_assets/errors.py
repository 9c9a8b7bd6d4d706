"""Known failures become one Dagster `Failure` line that names the problem and the fix,
instead of a wall of traceback in the UI."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg


def _known_errors() -> tuple[type[BaseException], ...]:
    from akko_assets.bi.server import SupersetError
    from akko_assets.governance.errors import AccessDenied, QueryError
    from akko_assets.lakehouse.replicate import EmptySource
    from akko_assets.lakehouse.spark import SparkSetupError
    from akko_assets.ml.registry import NoProductionModel, RegistryUnavailable
    from akko_assets.ml.train import TrainingDataError
    from akko_assets.resources.engine import ExtensionMissing
    from akko_assets.resources.postgres import SourceUnavailable
    from akko_assets.settings import SettingsError

    return (SourceUnavailable, EmptySource, SettingsError, ExtensionMissing, TrainingDataError, RegistryUnavailable,
            NoProductionModel, SupersetError, AccessDenied, QueryError, SparkSetupError)


@contextlib.contextmanager
def user_facing_errors() -> Iterator[None]:
    try:
        yield
    except _known_errors() as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def fails_clearly(fn):
    """Decorator form of `user_facing_errors` for asset bodies (plain or generator functions);
    also the one place every asset step gets its tracing span."""
    import functools
    import inspect

    from akko_assets.observability.runs import step_span

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            with step_span(), user_facing_errors():
                yield from fn(*args, **kwargs)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with step_span(), user_facing_errors():
            return fn(*args, **kwargs)

    return wrapper
