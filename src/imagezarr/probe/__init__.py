"""Stage 2, probe: read only the header bytes of an image and report format, shape and dtype.

The probes never decode pixels. The shape and dtype they report are exactly what the matching
``imagecodecs`` zarr-3 codec yields when it decodes the same file, because that codec is what
zarr uses to serve each image as one chunk.

Interface (stable; the format modules fill it in):

- ``ImageInfo``: frozen value with ``format``, ``shape``, ``dtype`` and ``codec``.
- ``probe(read, *, size, name) -> ImageInfo``: ``read(offset, length) -> bytes`` fetches bytes
  from any source (a local file, an object store); ``size`` is the file size when known;
  ``name`` is used in error messages only.
- ``probe_file(path) -> ImageInfo``: the local convenience.
- ``detect_format(head) -> str | None``: magic-byte sniffing of the first bytes.
- ``EXTENSIONS``: lower-case file extensions of the formats the probes know (default glob).
"""
