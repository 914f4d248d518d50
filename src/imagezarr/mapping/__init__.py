"""Run an analysis per group: a function over labeled groups, a results table, images out.

:func:`map_groups` calls ``func(group)`` once per combination of the ``by`` labels that has
an image, where ``group`` is the lazily loaded :class:`xarray.Dataset` of that selection, and
gathers what it returns into a :class:`pandas.DataFrame`: the labels, one column per scalar,
an ``error`` column. Where it runs is an :class:`~imagezarr.executor.Executor` (inline,
threads or a dask cluster); one group is one task, and results are kept as they finish:

- ``out`` (``.csv`` or ``.parquet``) is rewritten atomically as groups finish, so a killed
  run leaves a valid file; with ``resume`` a rerun runs only the groups missing from it or
  failed in it. The file records the manifest and the function (Parquet: in its metadata;
  CSV: in ``<out>.json`` beside it).
- Here (not on a cluster) neighbouring small groups are read in one zarr call, each group
  then getting its pixels in memory: a small group's own read is mostly per-call cost.
- Arrays the function returns with the image's ``y, x`` (a mask, a false-colour image) are
  written losslessly (PNG for 8/16-bit, TIFF otherwise) under ``<out stem>_images/<name>/``,
  named after the group's labels, with an ``index.csv`` and a manifest beside them
  (``<name>.imagezarr.json``) giving them the same labels: they open with ``open_dataset``,
  the viewer and napari, aligned with the source, and in any file browser.

>>> import imagezarr.testing
>>> m = imagezarr.testing.small_manifest()
>>> table = map_groups(m, lambda g: {"mean": float(g.image.mean())}, by=("barcode", "night"))
>>> list(table.columns), len(table)
(['barcode', 'night', 'mean', 'error'], 2)
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from .._version import __version__
from ..access import Access, AccessKeywords
from ..errors import MapError
from ..executor import Executor, Progress
from ..manifest import Manifest, ManifestLike, Opened, open_manifest
from ._function import _name_of, _remote_by_value, load_function
from ._groups import ERROR, GROUP, RESULT, _Context, _groups, _run_block, blocks
from ._results import _Results

__all__ = ["ERROR", "GROUP", "RESULT", "MapError", "load_function", "map_groups"]

_SUFFIXES = (".csv", ".parquet")
# seconds between rewrites of the results while groups finish: each rewrite is an atomic
# replace with fsync, and a killed run loses at most this much work (a rerun redoes it)
SAVE_EVERY = float(os.environ.get("IMAGEZARR_MAP_SAVE_EVERY", "2"))
BLOCK_BYTES = 32 * 2**20  # pixels read at once for neighbouring small groups


def map_groups(
    manifest: ManifestLike | Opened,
    func: Callable[[Any], Any] | str,
    by: str | Sequence[str],
    *,
    group: str | None = None,
    client: Executor | Any = None,
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: Progress | None = None,
    force: bool = False,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> Any:
    """Call ``func(group)`` once per combination of the ``by`` labels that has an image.

    Parameters
    ----------
    manifest
        A :class:`~imagezarr.manifest.Manifest`, or the path or URL of a saved one.
    func
        Takes the group's :class:`xarray.Dataset` (the ``by`` dims reduced to scalar
        coordinates, ``present`` and ``path`` included, pixels loaded when used) and returns
        a scalar, a mapping of names to scalars and images (arrays of the image's ``y, x``),
        or None. ``"file.py:name"`` or ``"module:name"`` load one (:func:`load_function`).
    by
        The dims whose labels make a group (``("barcode", "night")``), or group fields of a
        grouped manifest (``barcode`` with ``--group-by barcode``).
    group
        Only this group of a grouped manifest (default: every group).
    client, workers
        Where it runs: a dask ``distributed.Client`` or scheduler address (one task per
        group), else ``workers`` threads here (default: inline), or an
        :class:`~imagezarr.executor.Executor`.
    out
        ``.csv`` or ``.parquet`` file written as groups finish; returned images go to
        ``<stem>_images/`` beside it. Never inside the source folder (unless ``force``).
    resume
        Keep the groups ``out`` already holds without error; run only the others.
    progress
        ``progress(done, total)`` as groups finish.

    Returns
    -------
    pandas.DataFrame
        One row per group: the labels, one column per returned scalar (images: their file,
        relative to the images folder; without ``out``, the arrays), and ``error`` (""
        when the group worked, else the exception's type and message). ``attrs["ran"]`` and
        ``attrs["kept"]`` count the groups run now and those kept from ``out``.
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by or len(set(by)) != len(by):
        msg = f"by must name one or more distinct dims, not {by!r}"
        raise MapError(msg)
    fn = load_function(func) if isinstance(func, str) else func
    opened = open_manifest(manifest, access if access is not None else Access(), **options)
    m = opened.manifest
    nodes = list(m.nodes)
    if group is not None:
        nodes = [n for n in nodes if n.path == group]
        if not nodes:
            msg = f"group {group!r} is not in the manifest; its groups: {[n.path for n in m.nodes]}"
            raise MapError(msg)
    todo = _groups(m, by, nodes)
    target = _output(out)
    meta = {
        "manifest": opened.origin or m.root,
        "function": _name_of(fn),
        "by": by,
        "imagezarr": __version__,
    }
    results = _Results(target, by, meta, resume, m.root, force)
    pending = [g for g in todo if not results.done(g)]
    source = opened.origin if opened.origin is not None else m
    context = _Context(source, opened.access, fn)
    executor = Executor.of(client, workers)
    _remote_by_value(fn, executor)
    done = len(todo) - len(pending)
    if progress is not None:
        progress(done, len(todo))
    # here, neighbouring small groups share one read; on a cluster a group is one task
    most = 0 if executor.on_cluster else BLOCK_BYTES
    runs = blocks(pending, {n.path: n for n in nodes}, most)
    with executor.running():
        try:
            for position, outcomes in executor.each(
                _run_block, runs, context=context, name="map", workers=workers
            ):
                for group, outcome in zip(runs[position], outcomes, strict=True):
                    results.add(group, outcome)
                done += len(outcomes)
                if time.monotonic() - results.saved > SAVE_EVERY:
                    results.save(todo)
                if progress is not None:
                    progress(done, len(todo))
        finally:
            results.save(todo)
    if target is not None and results.index:
        results.describe_images(_types_of(m, by))
    table = results.table(todo)
    table.attrs.update(ran=len(pending), kept=len(todo) - len(pending))  # what resume skipped
    return table


def _output(out: str | os.PathLike[str] | None) -> Path | None:
    if out is None:
        return None
    path = Path(os.path.abspath(os.fspath(out)))
    if path.suffix.lower() not in _SUFFIXES:
        msg = f"out must end in .csv or .parquet, not {path.name!r}"
        raise MapError(msg)
    if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        msg = "writing .parquet needs pyarrow (pip install pyarrow), or write .csv"
        raise MapError(msg)
    return path


def _types_of(m: Manifest, by: Sequence[str]) -> dict[str, str]:
    """The ``types`` that read the written labels back as the source's labels."""
    kinds = {}
    for node in m.nodes:
        for d in by:
            coord = node.coords.get(d)
            if coord is None:
                continue
            kind = np.asarray(coord.values).dtype.kind
            if kind in "iu":
                kinds[d] = "int"
            elif kind == "f":
                kinds[d] = "float"
    return kinds
