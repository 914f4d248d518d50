"""Naming the function to run: FILE.py:NAME or MODULE:NAME, and sending it to workers."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MapError
from ..executor import Executor
from ._groups import UNSAFE


def _name_of(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}:{name}" if module and not module.startswith("imagezarr_user_") else name


def _version() -> str:
    from ._version import __version__

    return __version__


def _remote_by_value(fn: Callable[..., Any], executor: Executor) -> None:
    """A function from a user's file is not importable on dask workers: cloudpickle sends
    its module by value there (functions of installed modules travel by reference)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    user = module is not None and module.__name__.startswith("imagezarr_user_")
    if executor.on_cluster and user:
        import cloudpickle

        with contextlib.suppress(ValueError):  # already registered
            cloudpickle.register_pickle_by_value(module)


def load_function(spec: str) -> Callable[[Any], Any]:
    """The function ``"path/to/file.py:name"`` or ``"package.module:name"`` names.

    >>> load_function("os.path:basename")("a/b.png")
    'b.png'
    """
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        msg = f"{spec!r}: name a function as FILE.py:NAME or MODULE:NAME"
        raise MapError(msg)
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if not path.is_file():
            msg = f"{spec!r}: no such file {where!r}"
            raise MapError(msg)
        digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
        module_name = f"imagezarr_user_{UNSAFE.sub('_', path.stem)}_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(module_name, path)
            if loader is None or loader.loader is None:
                msg = f"{spec!r}: cannot load {where!r} as Python"
                raise MapError(msg)
            module = importlib.util.module_from_spec(loader)
            sys.modules[module_name] = module
            try:
                loader.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            msg = f"{spec!r}: cannot import {where!r} ({e})"
            raise MapError(msg) from e
    fn = getattr(module, name, None)
    if not callable(fn):
        defined = sorted(
            k
            for k, v in vars(module).items()
            if callable(v)
            and not k.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
        listed = ", ".join(defined) or "none"
        msg = f"{spec!r}: {where} has no function {name!r} (it defines: {listed})"
        raise MapError(msg)
    return fn
