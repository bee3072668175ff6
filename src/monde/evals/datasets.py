"""Where the real data sets live: an explicit folder, ``$MONDE_DATA``, or a ``shared/data`` sibling.

monde never downloads data at run time and never ships it. The evaluation protocols take a
folder holding one data set (``tep``, ``cmapss``, ``etth``) and this module finds it: the folder
given on the command line wins, then ``$MONDE_DATA/<name>``, then a ``shared/data/<name>``
folder next to the working directory or next to any folder above the installed package (a
checkout at ``/work/main`` finds ``/work/shared/data``).
"""

from __future__ import annotations

import os
from pathlib import Path

from monde.errors import DataError

DATASETS = ("tep", "cmapss", "etth", "fsdd")


def _candidates(name: str) -> list[Path]:
    """Folders to try, in order, after the explicit one (duplicates removed)."""
    found: list[Path] = []
    env = os.environ.get("MONDE_DATA")
    if env:
        found.append(Path(env).expanduser() / name)
    cwd = Path.cwd().resolve()
    found.append(cwd.parent / "shared" / "data" / name)
    # Walking up from the package finds the data whatever the working directory is (pytest
    # from a sub-folder, a script run elsewhere) as long as monde is an editable checkout.
    for parent in [cwd, *Path(__file__).resolve().parents]:
        found.append(parent / "shared" / "data" / name)
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def find_data(name: str, explicit: str | Path | None = None) -> Path:
    """The folder of data set ``name`` (one of ``DATASETS``).

    ``explicit`` (a ``--data DIR`` option) must exist when given; otherwise the first existing
    folder among ``$MONDE_DATA/<name>`` and ``shared/data/<name>`` near the working directory or
    the package. Raises :class:`DataError` listing where it looked when none exists.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise DataError(f"data folder {str(path)!r} for {name!r} does not exist; pass the "
                            f"folder that holds the {name} files")
        return path
    looked = _candidates(name)
    for path in looked:
        if path.is_dir():
            return path
    where = "\n  ".join(str(p) for p in looked)
    raise DataError(f"could not find the {name!r} data set; looked in:\n  {where}\n"
                    f"pass --data DIR (the folder holding the {name} files) or set MONDE_DATA "
                    "to a folder that contains it")
