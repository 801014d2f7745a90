"""Import windows from the formats researchers have into the canonical HDF5 window file.

Window formats are stored as they are (no resampling, no quality control, since their
authors already chose the windows): ``bp-benchmark`` fold files and the original
release's ``innpar-npy`` folders. Recording formats (``wfdb``, ``csv``, ``npz``) go
through one pipeline (:mod:`innpar_freia.data.windowing`): resample, align PPG to ABP,
cut windows and quality-check each of them. Every importer returns an
:class:`ImportReport` of what was kept and rejected and why, and writes the same facts,
with the sha256 of every input file and the options used, into the file's provenance.
Files are written atomically: on any error no output file is left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from innpar_freia.data.bp_benchmark import import_bp_benchmark
from innpar_freia.data.import_report import (
    DEFAULT_FS,
    ImportReport,
    Progress,
    SourceReport,
    read_subject_map,
    sha256_file,
    start_from_id,
)
from innpar_freia.data.innpar_npy import DEFAULT_SUBJECT_PATTERN, import_innpar_npy
from innpar_freia.errors import DataError

FORMATS = ("bp-benchmark", "innpar-npy", "wfdb", "csv", "npz")
WINDOW_FORMATS = ("bp-benchmark", "innpar-npy")
__all__ = [
    "DEFAULT_FS",
    "DEFAULT_SUBJECT_PATTERN",
    "FORMATS",
    "WINDOW_FORMATS",
    "ImportReport",
    "Progress",
    "SourceReport",
    "import_bp_benchmark",
    "import_data",
    "import_innpar_npy",
    "read_subject_map",
    "sha256_file",
    "start_from_id",
]


def import_data(fmt: str, path: str | Path, out: str | Path, **options: Any) -> ImportReport:
    """Import ``path`` in format ``fmt`` (one of :data:`FORMATS`) into the window file
    ``out``; ``options`` are those of the format's importer."""
    if fmt == "bp-benchmark":
        return import_bp_benchmark(path, out, **options)
    if fmt == "innpar-npy":
        return import_innpar_npy(path, out, **options)
    if fmt in ("wfdb", "csv", "npz"):
        from innpar_freia.data.recording_importers import import_recordings

        return import_recordings(fmt, path, out, **options)
    raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
