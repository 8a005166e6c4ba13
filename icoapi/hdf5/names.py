"""The one name policy of measurement files: the names the service gives (to a
measurement, to an uploaded file) and the names it accepts in requests.

* **Given names** keep what the user typed (spaces, umlauts, any script), with
  only the characters some file system or the files API refuses
  (:data:`UNSAFE_CHARACTERS`: ``<>:"/\\|?*%`` and control characters) replaced
  by ``_``, runs of dots shortened to one, and no leading or trailing dot or
  space. A measurement's name gets ``__<date>_<time>``; an uploaded file keeps
  its base name (whatever folder its client sent).
* **Accepted names** (:func:`is_measurement_file_name`) are plain file names
  (:func:`icoapi.core.names.is_plain_file_name`) ending in ``.hdf5``: every
  given name is one, and so are files copied into the folder by other means.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from icoapi.core.names import MAX_NAME_LENGTH, is_plain_file_name

SUFFIX = ".hdf5"
UNSAFE_CHARACTERS = re.compile(r'[<>:"/\\|?*%\x00-\x1f\x7f]+')
_ENDS = re.compile(r"^[\s.]+|[\s.]+$")
MAX_STEM_BYTES = 160
"""UTF-8 bytes of the user's part of a name (the rest: date, counter, suffix)."""
MEASUREMENT_FILE_PATTERN = (
    r"^[^./\\:\x00-\x1f\x7f][^/\\:\x00-\x1f\x7f]{0," + str(MAX_NAME_LENGTH - 6) + r"}\.hdf5$"
)
"""The accepted names for the OpenAPI description (ECMA regex; the check itself
also refuses ``..``, surrounding whitespace and percent-encoded separators)."""


class InvalidNameError(ValueError):
    """The name cannot become a measurement file name (message: why)."""


def is_measurement_file_name(name: str) -> bool:
    """Whether requests may name the measurement file ``name``."""
    return is_plain_file_name(name) and name.endswith(SUFFIX) and len(name) > len(SUFFIX)


def safe_stem(text: str) -> str:
    """``text`` as the user's part of a file name (may be empty)."""
    text = UNSAFE_CHARACTERS.sub("_", unicodedata.normalize("NFC", text))
    # ".." is refused by the files API (it looks like a path step).
    text = re.sub(r"\.{2,}", ".", text)
    # Windows drops trailing dots and spaces; a leading dot hides a file.
    text = _ENDS.sub("", text)
    encoded = text.encode("utf-8")[:MAX_STEM_BYTES]
    return _ENDS.sub("", encoded.decode("utf-8", errors="ignore"))


def measurement_file_stem(name: str | None, now: datetime) -> str:
    """``<name>__YYYY-MM-DD_HH-MM-SS`` for a measurement started ``now``."""
    stamp = now.strftime("%Y-%m-%d_%H-%M-%S")
    text = safe_stem(name or "")
    return f"{text}__{stamp}" if text else stamp


def upload_file_name(filename: str) -> str:
    """The stored name of an uploaded file: its base name, made safe.

    :raises InvalidNameError: it does not end in ``.hdf5`` or has no usable stem."""
    base = re.split(r"[\\/]", filename)[-1].strip()
    if not base.lower().endswith(SUFFIX):
        raise InvalidNameError("Only HDF5 measurement files (*.hdf5) can be uploaded.")
    stem = safe_stem(base[: -len(SUFFIX)])
    if not stem:
        raise InvalidNameError("The uploaded file name has no usable characters.")
    return f"{stem}{SUFFIX}"


def numbered_names(name: str, limit: int = 10_000) -> list[str]:
    """``name``, then ``<stem>__1.hdf5``, ``__2``… (an existing ``__N`` replaced)."""
    stem = re.sub(r"__\d+$", "", name[: -len(SUFFIX)])
    return [name] + [f"{stem}__{n}{SUFFIX}" for n in range(1, limit)]
