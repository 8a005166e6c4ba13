"""Files embedded in a measurement file (``/embedded_files/<dataset>``): add,
list, download in chunks, remove. Blocking functions; the service runs them in
worker threads."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from icoapi.core.tasks import run_blocking
from icoapi.core.uploads import ReceivedFile
from icoapi.files.access import opened
from icoapi.files.errors import EmbeddedFileTooLargeError, MeasurementFileNotFoundError
from icoapi.files.schemas import EmbeddedFileDetails, EmbeddedFileInfo
from icoapi.hdf5.reader import EmbeddedNode, MeasurementReader
from icoapi.hdf5.validation import FileVerdicts

logger = logging.getLogger(__name__)

EMBEDDED_CHUNK = 1024**2
_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


def to_ascii(text: str) -> str:
    """ASCII transliteration (umlauts as ae/oe/ue, accents dropped, others removed)."""
    return (
        unicodedata.normalize("NFKD", text.translate(_UMLAUTS))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def embedded_dataset_name(original_name: str) -> str:
    """HDF5 node name for an embedded file: ``hello.txt`` → ``hello_txt``
    (ASCII letters, digits and ``_``; a leading digit gets ``file__``)."""
    base = re.split(r"[\\/]", original_name)[-1]
    name = re.sub(r"[^A-Za-z0-9]+", "_", to_ascii(base)).strip("_")[:100] or "file"
    return f"file__{name}" if name[0].isdigit() else name


def _info(node: EmbeddedNode) -> EmbeddedFileInfo:
    return EmbeddedFileInfo(
        dataset_name=node.dataset_name,
        original_name=node.original_name,
        mime=node.mime,
        size=node.size,
    )


def embedded_details(
    reader: MeasurementReader, name: str, download_base: str
) -> list[EmbeddedFileDetails]:
    result = []
    for node in reader.embedded_files():
        path = f"{quote(name, safe='')}/embedded/{quote(node.dataset_name, safe='')}"
        result.append(
            EmbeddedFileDetails(**_info(node).model_dump(), download_path=f"{download_base}/{path}")
        )
    return result


@dataclass(frozen=True)
class EmbeddedDownload:
    info: EmbeddedFileInfo
    length: int  # bytes that ``chunks`` yields
    chunks: AsyncIterator[bytes]


class EmbeddedFiles:
    """Embedded files of the measurement files (checked by ``verdicts``)."""

    def __init__(self, verdicts: FileVerdicts, max_size: int) -> None:
        self.verdicts = verdicts
        self.max_size = max_size

    def check(self, path: Path) -> None:
        """:raises: the files errors of a file that cannot take embedded files."""
        with opened(path, self.verdicts):
            pass

    def add(self, path: Path, uploads: list[ReceivedFile]) -> list[EmbeddedFileInfo]:
        with opened(path, self.verdicts, "a") as reader:
            return [self._embed(reader, upload) for upload in uploads]

    @staticmethod
    def _embed(reader: MeasurementReader, upload: ReceivedFile) -> EmbeddedFileInfo:
        base = embedded_dataset_name(upload.filename)
        existing = reader.embedded_names()
        dataset = base
        counter = 1
        while dataset in existing:
            dataset = f"{base}__{counter}"
            counter += 1
        array = reader.create_embedded(dataset, upload.size, upload.filename[:200])
        with upload.path.open("rb") as source:
            while chunk := source.read(EMBEDDED_CHUNK):
                reader.append_embedded(array, chunk)
        mime = upload.content_type or "application/octet-stream"
        reader.finish_embedded(
            array, {"size": upload.size, "mime": mime, "original_name": upload.filename}
        )
        logger.info("Embedded %s as %s in %s", upload.filename, dataset, reader.path.name)
        return EmbeddedFileInfo(
            dataset_name=dataset, original_name=upload.filename, mime=mime, size=upload.size
        )

    async def open(self, path: Path, dataset: str) -> EmbeddedDownload:
        """Info and byte chunks of an embedded file (errors raised before streaming)."""
        info, rows, length, content = await run_blocking(self._layout, path, dataset)
        chunks = _split(content) if content is not None else self._chunks(path, dataset, rows)
        return EmbeddedDownload(info=info, length=length, chunks=chunks)

    def _layout(self, path: Path, dataset: str) -> tuple[EmbeddedFileInfo, int, int, bytes | None]:
        """Info, rows and byte length; for a scalar byte string also its content
        (HDF5 reads a scalar only whole)."""
        with opened(path, self.verdicts) as reader:
            try:
                node, rows, length, scalar = reader.embedded_layout(dataset)
                if scalar is None:
                    return _info(node), rows, length, None
                if scalar > self.max_size:
                    raise EmbeddedFileTooLargeError(
                        f"The embedded file {dataset} is stored as one byte string of "
                        f"{scalar} bytes; at most {self.max_size} bytes are read that way."
                    )
                content = reader.embedded_scalar(dataset)
                return _info(node), 1, len(content), content
            except LookupError:
                raise MeasurementFileNotFoundError() from None

    async def _chunks(self, path: Path, dataset: str, rows: int) -> AsyncIterator[bytes]:
        # The file is opened per chunk: no handle outlives a step.
        for start in range(0, rows, EMBEDDED_CHUNK):
            yield await run_blocking(self._bytes, path, dataset, start)

    def _bytes(self, path: Path, dataset: str, start: int) -> bytes:
        with opened(path, self.verdicts) as reader:
            try:
                return reader.embedded_bytes(dataset, start, EMBEDDED_CHUNK)
            except LookupError:
                raise MeasurementFileNotFoundError() from None

    def remove(self, path: Path, dataset: str) -> None:
        with opened(path, self.verdicts, "a") as reader:
            try:
                reader.remove_embedded(dataset)
            except LookupError:
                raise MeasurementFileNotFoundError() from None


async def _split(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, max(len(content), 1), EMBEDDED_CHUNK):
        yield content[start : start + EMBEDDED_CHUNK]
