"""Keeping a manifest current: :func:`update` scans its root again with the layout it
recorded (probing only new and changed files) and :func:`watch` does so whenever the folder
changes. A saving update never replaces another process's save (see ``manifest._guard``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal, Unpack

from .access import Access, AccessKeywords
from .errors import ImageZarrError, ManifestChangedError, ManifestError
from .executor import Executor
from .layout import Derivation
from .manifest import (
    FileDiff,
    Manifest,
    ManifestLike,
    Opened,
    diff_files,
    emptied_labels,
    open_manifest,
    read_stamp,
    save_replacing,
)
from .roots import is_url, root_url
from .scanning import layout_spec, run_scan

__all__ = ["update", "watch", "watches_events"]

Progress = Callable[[int, int], None]


def update(
    manifest: ManifestLike | Opened,
    *,
    access: Access | None = None,
    derived: Mapping[str, Derivation] | None = None,
    drop_undecodable: bool = False,
    progress: Progress | None = None,
    client: Any = None,
    removed: Literal["shrink", "holes"] = "shrink",
    save: bool | str | os.PathLike[str] = False,
    force: bool = False,
    **options: Unpack[AccessKeywords],
) -> tuple[Manifest, FileDiff]:
    """Scan a manifest's root (or ``root``) again with the layout it recorded; report changes.

    Returns the new manifest (not yet saved) and the difference in files, judged with the
    freshness check ``check`` (with ``"checksum"`` and ``"size"``, files whose time alone
    changed are listed as ``retimed``, not changed). The access keywords (``root``,
    ``storage_options``, ``allow_outside_root``, ``check``; see :class:`Access`) say where
    the images are now and how they are judged. Checksums are recorded again when the
    manifest had them. With ``drop_undecodable``, every file is also decoded and those that
    fail become holes (listed in ``diff.dropped`` and with the manifest's unreadable files),
    the fix ``verify --decode`` points to. Derived fields computed by Python callables must
    be given again in ``derived``. With a dask ``client`` (or scheduler address), the listing
    and the probes of new and changed files are spread over its cluster, as in :func:`scan`.

    A removed file leaves a hole. A label whose files are all gone (a plant taken out) leaves
    its coordinate with ``removed="shrink"``, as a new scan would have it, or stays as a slice
    of holes with ``removed="holes"``, so that shapes only grow; ``diff.labels`` says which
    labels went which way.

    With ``save=True`` the new manifest replaces the one read (when something changed), with
    ``save=PATH`` it is written there (``force`` allows a path inside the source folder).
    Such a save never replaces another process's save made meanwhile (a ``watch``, a second
    ``update``): when the file is no longer the one this update started from, the update is
    made again from it, so every file the other recorded is kept; ``diff.redone`` counts
    how often. :class:`~imagezarr.errors.ManifestChangedError` when it kept changing.

    >>> import tempfile, pathlib, imagezarr.testing
    >>> m = imagezarr.testing.small_manifest(tempfile.mkdtemp())
    >>> plant_a1 = [p for p in m.files.paths if "/A1-" in p]
    >>> for p in plant_a1: pathlib.Path(m.root, p).unlink()
    >>> new, diff = update(m, removed="holes")
    >>> diff.removed == tuple(plant_a1), diff.labels, new.node().shape
    (True, ("barcode='A1': no file left, kept as holes",), (2, 1, 1, 2))
    >>> update(m)[1].labels  # the default: the label leaves, as in a new scan
    ("barcode='A1': no file left, removed from barcode",)
    """
    if removed not in ("shrink", "holes"):
        msg = f"removed must be 'shrink' or 'holes', not {removed!r}"
        raise ValueError(msg)
    opened = open_manifest(manifest, access, **options)
    if save is False:
        return _update_once(opened, derived, drop_undecodable, progress, client, removed)
    if save is True and opened.origin is None:
        msg = (
            "save=True writes the manifest back where it was read; this one was given as "
            "an object: pass save=PATH"
        )
        raise ValueError(msg)
    target = opened.origin if save is True else root_url(save)
    in_place = target == opened.origin
    storage_options = opened.access.storage_options
    expect = opened.stamp if in_place else read_stamp(target, storage_options)
    redone = 0
    while True:
        new, diff = _update_once(opened, derived, drop_undecodable, progress, client, removed)
        diff = replace(diff, redone=redone)
        if in_place and not diff.any:  # the manifest already says it all: leave it be
            return new, diff
        where, data = new.encoded(target, force=force or in_place)
        try:
            save_replacing(data, where, expect, storage_options=storage_options)
        except ManifestChangedError:
            if redone == REDO_LIMIT:
                raise
            redone += 1
            # another process saved meanwhile: start again from its save (re-listing the
            # folder), so that nothing it recorded is lost
            if opened.origin is not None:
                opened = open_manifest(opened.origin, opened.access)
            expect = opened.stamp if in_place else read_stamp(target, storage_options)
            continue
        return new, diff


#: how often a save made again (another process saved first) may find the file changed again
REDO_LIMIT = 5


def _update_once(
    opened: Opened,
    derived: Mapping[str, Derivation] | None,
    drop_undecodable: bool,
    progress: Progress | None,
    client: Any,
    removed: str,
) -> tuple[Manifest, FileDiff]:
    old, how = opened.manifest, opened.access
    check = opened.check
    spec = layout_spec(old.layout, derived=derived)
    with Executor.of(client).running() as executor:
        new = run_scan(
            old.root,
            spec,
            on_unreadable="skip" if old.unreadable else "error",
            storage_options=how.storage_options if is_url(old.root) else None,
            allow_outside_root=how.outside,
            progress=progress,
            checksum=old.files.checksums is not None or check == "checksum",
            reuse=old,  # only new and changed files are probed; labels and chosen dims kept
            executor=executor,
            keep_labels=removed == "holes",
        )
    dropped: tuple[str, ...] = ()
    if drop_undecodable:
        from .verify import verify

        report = verify(new, decode=True, access=how)
        dropped = tuple(sorted({p.path for p in report.problems if p.kind == "undecodable"}))
        new = new.without(dropped)
    diff = diff_files(old.files, new.files, check)
    return new, replace(
        diff, dropped=dropped, labels=emptied_labels(old, new, kept=removed == "holes")
    )


def watch(
    manifest: str | os.PathLike[str],
    *,
    interval: float = 60.0,
    output: str | os.PathLike[str] | None = None,
    access: Access | None = None,
    on_change: Callable[[FileDiff, Manifest], None] | None = None,
    on_failure: Callable[[ImageZarrError], None] | None = None,
    stop: threading.Event | None = None,
    rounds: int | None = None,
    removed: Literal["shrink", "holes"] = "shrink",
    events: bool | None = None,
    on_start: Callable[[str | None], None] | None = None,
    drop_undecodable: bool = False,
    dry_run: bool = False,
    **options: Unpack[AccessKeywords],
) -> int:
    """Keep a manifest up to date: :func:`update` whenever the folder reports a change and
    at least every ``interval`` seconds, saving (atomically, to ``output`` or in place) only
    when something changed.

    The access keywords (``root``, ``storage_options``, ``allow_outside_root``, ``check``)
    and ``removed`` and ``drop_undecodable`` mean what they mean for :func:`update`, for
    every round. With ``dry_run`` nothing is saved: ``on_change`` still hears of each
    change set (compared with the manifest as it was). File-system events (``events``; by
    default used when the root is a local folder and the ``watchfiles`` package is installed,
    ``pip install imagezarr[watch]``) start an update as soon as a copy has gone quiet for a
    moment; the ``interval`` check stays, for shares and buckets that report nothing.
    Readers holding the previous manifest keep reading it as it was: a save replaces the
    file in one rename and never touches the images. Runs until ``stop`` is set, ``rounds``
    updates were made, or Ctrl-C; ``on_change(diff, manifest)`` hears of each change set.
    A round that fails (a file still being copied in reads as a broken image) changes
    nothing and is tried again at the next change or interval; ``on_failure(error)`` hears
    of it (by default it is logged as a warning). ``on_start(folder)`` hears, before the
    first round, which folder's events are followed (None: the interval alone). Returns how
    many change sets were saved (with ``dry_run``: found).
    """
    stop = stop or threading.Event()
    opened = open_manifest(manifest, access, **options)
    how = opened.access
    current = opened.manifest
    target = root_url(manifest if output is None else output)
    # the stamp of the target as this process last saw it: a save replaces only that
    known = opened.stamp if output is None else read_stamp(target, how.storage_options)
    folder = watches_events(opened, events)
    if on_start is not None:
        on_start(folder)
    wait = _Waiter(folder, interval, stop)
    saved = done = 0
    try:
        while rounds is None or done < rounds:
            done += 1
            try:
                # the root (if given) re-rooted the manifest once; later rounds scan it
                new, diff = update(
                    current,
                    access=replace(how, root=None),
                    removed=removed,
                    drop_undecodable=drop_undecodable,
                )
            except ImageZarrError as e:
                (on_failure or _log_watch_error)(e)
                if wait():
                    break
                continue
            if diff.any:
                if not dry_run:
                    where, data = new.encoded(target, force=output is None)
                    try:
                        known = save_replacing(
                            data, where, known, storage_options=how.storage_options
                        )[1]
                    except ManifestChangedError:
                        # another update saved it meanwhile: go on from its save at once
                        current, known = _reread(target, how, current)
                        done -= 1
                        continue
                    current = new
                saved += 1
                if on_change is not None:
                    on_change(diff, new)
            if wait():
                break
    finally:
        wait.close()
    return saved


def _reread(target: str, how: Access, current: Manifest) -> tuple[Manifest, str | None]:
    """The manifest at ``target`` and its stamp, after another process saved it; ``current``
    again (to be written afresh) when that process removed it."""
    try:
        again = open_manifest(target, how)
    except ManifestError:
        if read_stamp(target, how.storage_options) is None:
            return current, None
        raise
    return again.manifest, again.stamp


def watches_events(opened: Opened, events: bool | None = None) -> str | None:
    """The local folder whose file-system events :func:`watch` follows, or None (polling
    only): ``events=None`` means when possible, ``True`` requires it."""
    try:
        folder = os.path.normpath(opened.source.local_path(""))
    except NotImplementedError:  # a bucket or HTTP: nothing reports changes
        folder = None
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        folder = None if events is None else folder
        if events:
            msg = "watching file-system events needs watchfiles: pip install imagezarr[watch]"
            raise ImportError(msg) from None
    if events is False:
        return None
    if events and folder is None:
        msg = f"{opened.manifest.root}: a remote root reports no file-system events; drop --events"
        raise ValueError(msg)
    return folder


class _Waiter:
    """The wait between rounds of :func:`watch`: until the folder reports changes that then
    go quiet (file-system events, followed in a thread started before the first round, so
    that nothing changed meanwhile is missed), or ``interval`` passes, or ``stop`` is set."""

    def __init__(self, folder: str | None, interval: float, stop: threading.Event) -> None:
        self.interval, self.stop = interval, stop
        self.changed = threading.Event()
        self.quit = threading.Event()
        if folder is not None:
            threading.Thread(target=self._follow, args=(folder,), daemon=True).start()

    def _follow(self, folder: str) -> None:
        import watchfiles

        # a burst of events (a copy in progress) counts once it has been quiet for 0.5 s
        for _ in watchfiles.watch(
            folder,
            stop_event=self.quit,
            debounce=10_000,
            step=500,
            watch_filter=None,
            raise_interrupt=False,  # Ctrl-C belongs to the main thread
        ):
            self.changed.set()

    def __call__(self) -> bool:
        """Wait; True once ``stop`` is set."""
        deadline = time.monotonic() + self.interval
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self.changed.wait(min(left, 0.2)):
                break
        self.changed.clear()
        return self.stop.is_set()

    def close(self) -> None:
        self.quit.set()


def _log_watch_error(error: ImageZarrError) -> None:
    logging.getLogger(__name__).warning("update failed, trying again: %s", error)
