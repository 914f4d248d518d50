"""How a manifest is reached and trusted on this machine: the :class:`Access` value.

A saved manifest says *what* is there (files, layout, arrays). An :class:`Access` says *how*
to reach and trust it here: another copy of the images (``root``), how to reach a remote one
(``storage_options``), whether links may lead out of the root (``allow_outside_root``), how a
file counts as unchanged (``check``) and what a bad file does to a read (``on_error``). It
travels beside the manifest, never inside it, and is never saved.

Every verb (``open_dataset``, ``open_store``, ``verify``, ``preview``, the exports, ``serve``,
``update``, ``watch``, ...) takes the same five keywords, or a ready ``access=Access(...)``.
A field left ``None`` means "not said here": the earlier value (a store's own, the
manifest's recorded root) or the default stands. An option named in a call always wins:

>>> store_access = Access(check="size", on_error="fill")
>>> (store_access | Access(check="mtime")).check, (store_access | Access()).on_error
('mtime', 'fill')
>>> Access.of(None, {"check": "stat"}).check
'mtime'
>>> Access.of(None, {"cheque": "size"})
Traceback (most recent call last):
TypeError: unknown keyword 'cheque'; the access keywords are root, storage_options, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypedDict

from .roots import Check, normalize_check

__all__ = ["ACCESS_KEYWORDS", "Access", "AccessKeywords", "OnError", "split_access"]

OnError = Literal["raise", "fill"]
ON_ERRORS: tuple[str, ...] = ("raise", "fill")


class AccessKeywords(TypedDict, total=False):
    """The keywords every verb takes for :class:`Access` (``**access: Unpack[...]``)."""

    root: str | os.PathLike[str]
    storage_options: Mapping[str, Any]
    allow_outside_root: bool
    check: Check
    on_error: OnError


ACCESS_KEYWORDS: tuple[str, ...] = tuple(AccessKeywords.__annotations__)


@dataclass(frozen=True, slots=True)
class Access:
    """How to reach and trust a manifest's images; ``None`` fields are not said here.

    Attributes
    ----------
    root
        Another copy of the images (a folder or URL, e.g. a mirror or a moved folder), used
        instead of the root the manifest records.
    storage_options
        How to reach remote manifests and roots: ``obstore.store.from_url`` keywords such as
        ``config`` and ``client_options``. Credentials otherwise come from the environment.
    allow_outside_root
        Let entries and symbolic links lead out of the root (only for manifests you trust).
    check
        How a file counts as unchanged before its bytes are used: ``"mtime"`` (default),
        ``"size"``, ``"checksum"`` or ``"none"`` (see :func:`imagezarr.roots.stale`).
    on_error
        ``"raise"`` (default): a missing, changed or undecodable file is an error naming it.
        ``"fill"``: it reads as the fill value, with a warning naming it.

    Examples
    --------
    >>> a = Access(root="/mnt/copy", check="size")
    >>> a.check, a.on_error, a.resolved_on_error
    ('size', None, 'raise')
    """

    root: str | None = None
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)
    allow_outside_root: bool | None = None
    check: Check | None = None
    on_error: OnError | None = None

    def __post_init__(self) -> None:
        if self.root is not None:
            object.__setattr__(self, "root", os.fspath(self.root))
        if self.check is not None:
            object.__setattr__(self, "check", normalize_check(self.check))
        if self.on_error is not None and self.on_error not in ON_ERRORS:
            msg = f"on_error must be 'raise' or 'fill', not {self.on_error!r}"
            raise ValueError(msg)
        if self.storage_options is not None:
            if not isinstance(self.storage_options, Mapping):
                msg = f"storage_options must be a mapping, not {self.storage_options!r}"[:200]
                raise TypeError(msg)
            object.__setattr__(self, "storage_options", dict(self.storage_options))
        if self.allow_outside_root is not None:
            object.__setattr__(self, "allow_outside_root", bool(self.allow_outside_root))

    @classmethod
    def of(cls, access: Access | None = None, options: Mapping[str, Any] | None = None) -> Access:
        """``access`` with the keyword ``options`` of a call laid over it (they win).

        An unknown keyword is a :class:`TypeError` naming it, as for any function.
        """
        given = dict(options or {})
        unknown = sorted(set(given) - set(ACCESS_KEYWORDS))
        if unknown:
            msg = (
                f"unknown keyword {unknown[0]!r}; the access keywords are "
                f"{', '.join(ACCESS_KEYWORDS)}"
            )
            raise TypeError(msg)
        base = access if access is not None else cls()
        return base | cls(**given) if given else base

    def __or__(self, later: Access) -> Access:
        """This access with every field ``later`` says laid over it."""
        if not isinstance(later, Access):
            return NotImplemented
        said = {f.name: getattr(later, f.name) for f in fields(later)}
        return replace(self, **{k: v for k, v in said.items() if v is not None})

    @property
    def options(self) -> dict[str, Any]:
        """The storage options, ``{}`` when none were said."""
        return dict(self.storage_options or {})

    @property
    def resolved_check(self) -> Check:
        return self.check or "mtime"

    @property
    def resolved_on_error(self) -> OnError:
        return self.on_error or "raise"

    @property
    def outside(self) -> bool:
        return bool(self.allow_outside_root)

    def keywords(self) -> AccessKeywords:
        """The fields this access says, as keywords for a verb."""
        said = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in said.items() if v is not None}  # type: ignore[return-value]

    def __repr__(self) -> str:  # never print storage options: they may hold credentials
        said = [f"{k}={v!r}" for k, v in self.keywords().items() if k != "storage_options"]
        if self.storage_options is not None:
            said.append("storage_options=...")
        return f"Access({', '.join(said)})"


def split_access(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into the access keywords and the rest (which go elsewhere, e.g. to
    xarray).

    >>> split_access({"check": "size", "decode_times": False})
    ({'check': 'size'}, {'decode_times': False})
    """
    mine = {k: v for k, v in kwargs.items() if k in ACCESS_KEYWORDS}
    return mine, {k: v for k, v in kwargs.items() if k not in ACCESS_KEYWORDS}
