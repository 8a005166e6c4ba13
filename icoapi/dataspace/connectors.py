"""Connectors: the two kinds of dataspace a measurement file can go to.

* :class:`TridentConnector` speaks the Trident REST protocol (login, bearer
  tokens, presigned upload URLs, paged listing).
* :class:`S3Connector` talks to any S3-compatible store through boto3.

Both are blocking and thread-safe enough for one uploader plus occasional
listings; the service calls them in worker threads. Every network call has a
timeout. Both raise only :mod:`icoapi.dataspace.errors` exceptions, and never
put a password, token, key or presigned URL into an exception text or log line.
Files are streamed from disk: memory stays bounded by one part whatever the size.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, urlsplit

import urllib3

from icoapi.configuration.schemas import EnabledConnection, S3Connection
from icoapi.dataspace.errors import (
    DataspaceAuthError,
    DataspaceError,
    DataspaceProtocolError,
    DataspaceRefusedError,
    DataspaceTimeoutError,
    DataspaceUnreachableError,
    IntegrityError,
)

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# Multipart above this size; each part is this large (S3 allows 5 MiB .. 5 GiB
# per part and 10 000 parts, so 8 MiB parts cover files up to 78 GiB and larger
# files get larger parts).
PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
PART_CONCURRENCY = 6
STREAM_BLOCK = 256 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
PRESIGN_SECONDS = 600
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 10_000
# S3 user metadata is limited to 2 KiB in total; larger metadata documents go
# into a sidecar object next to the file.
INLINE_METADATA_BYTES = 1536
METADATA_SUFFIX = ".metadata.json"

Progress = Callable[[int], None]
"""Called with the number of bytes sent so far."""


@dataclass(frozen=True)
class RemoteObject:
    """One measurement file in the dataspace."""

    name: str
    id: int | None
    size: int | None
    etag: str | None
    last_modified: datetime | None
    status: str  # available, updating, created (S3: always available)


@dataclass(frozen=True)
class UploadResult:
    remote: RemoteObject
    etag: str  # the checksum of the bytes sent, in S3 ETag form


class Connector(Protocol):
    kind: str
    manage_url: str | None
    part_size: int

    def authenticate(self) -> None: ...

    def list_objects(self) -> list[RemoteObject]: ...

    def upload(
        self,
        path: Path,
        name: str,
        size: int,
        metadata: dict[str, Any],
        remote_id: int | None,
        progress: Progress,
    ) -> UploadResult: ...

    def close(self) -> None: ...


# -- checksums ---------------------------------------------------------------------------


def part_size_for(size: int, part_size: int = PART_SIZE) -> int:
    """The part size used for a file of ``size`` bytes (at most MAX_PARTS parts)."""
    while size > part_size * MAX_PARTS:
        part_size *= 2
    return part_size


def etag_part_size(etag: str, size: int, part_size: int) -> int:
    """The part size an ETag of a ``size``-byte file was computed with: 0 for a
    single-PUT MD5, else the multipart part size (ETags ``md5-N``)."""
    return part_size_for(size, part_size) if "-" in etag else 0


def file_etag(path: Path, size: int, part_size: int = PART_SIZE) -> str:
    """The ETag an S3 store gives ``path`` uploaded by this service: the MD5 for
    a single PUT, ``md5(part md5s)-N`` for a multipart upload."""
    part_size = part_size_for(size, part_size)
    digests: list[bytes] = []
    with open(path, "rb") as file:
        while True:
            part = hashlib.md5(usedforsecurity=False)
            remaining = part_size
            while remaining and (block := file.read(min(STREAM_BLOCK, remaining))):
                part.update(block)
                remaining -= len(block)
            if remaining == part_size and digests:
                break
            digests.append(part.digest())
            if remaining:
                break
    if size <= part_size:
        return digests[0].hex()
    return multipart_etag(digests)


def multipart_etag(digests: list[bytes]) -> str:
    combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(digests)}"


def plain_etag(etag: str | None) -> str | None:
    return etag.strip().strip('"').lower() if etag else None


class HashingReader:
    """A file-like view of ``size`` bytes of a file that hashes what is read and
    reports progress; http.client streams it block by block."""

    def __init__(self, file: BinaryIO, size: int, progress: Progress) -> None:
        self.file = file
        self.remaining = size
        self.sent = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.progress = progress

    def read(self, amount: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        amount = self.remaining if amount < 0 else min(amount, self.remaining, STREAM_BLOCK)
        block = self.file.read(amount)
        if not block:
            # Shorter than announced: the file shrank during the upload.
            raise DataspaceError("The file became shorter during the upload.")
        self.remaining -= len(block)
        self.sent += len(block)
        self.md5.update(block)
        self.progress(self.sent)
        return block


def _when(value: Any) -> datetime | None:
    """A timestamp from the dataspace (ISO text, ``Z`` allowed; naive = UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- Trident -----------------------------------------------------------------------------


class TridentConnector:
    """The Trident REST protocol.

    The access token is kept and reused; a request answered 401 refreshes it (or
    logs in again if the refresh is refused) and is retried once. The refresh
    token travels in the request body."""

    kind = "trident"
    part_size = PART_SIZE  # not used by Trident (one presigned PUT); kept for status

    def __init__(
        self,
        connection: EnabledConnection,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.connection = connection
        self.service = connection.service
        self.manage_url = (
            f"{self.service}/{connection.manage_assets_path}"
            if connection.manage_assets_path
            else None
        )
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.http = urllib3.PoolManager(timeout=self.timeout, retries=False, num_pools=4, maxsize=2)
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_token: str | None = None

    # -- plumbing -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        what: str,
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self.http.request(
                method, url, body=body, headers=headers, preload_content=True, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as error:
            # Checked first: urllib3 derives it from ConnectTimeoutError.
            raise DataspaceUnreachableError(
                f"The dataspace at {_host(url)} cannot be reached ({what}): connection failed."
            ) from error
        except urllib3.exceptions.TimeoutError as error:
            raise DataspaceTimeoutError(
                f"The dataspace at {_host(url)} did not answer in time ({what})."
            ) from error
        except urllib3.exceptions.HTTPError as error:
            raise DataspaceUnreachableError(
                f"The dataspace at {_host(url)} cannot be reached ({what}): {type(error).__name__}."
            ) from error

    def _json(self, response: urllib3.BaseHTTPResponse, what: str) -> Any:
        try:
            return json.loads(response.data)
        except ValueError as error:
            raise DataspaceProtocolError(
                f"The dataspace sent an answer that is not JSON ({what}, HTTP {response.status})."
            ) from error

    @staticmethod
    def _check(response: urllib3.BaseHTTPResponse, what: str) -> None:
        if response.status < 300:
            return
        if response.status >= 500:
            raise DataspaceError(
                f"The dataspace failed ({what}): HTTP {response.status}{_reason(response)}."
            )
        raise DataspaceRefusedError(
            f"The dataspace refused the request ({what}): HTTP {response.status}"
            f"{_reason(response)}."
        )

    def _json_body(self, value: Any) -> tuple[bytes, dict[str, str]]:
        return json.dumps(value).encode("utf-8"), {"Content-Type": "application/json"}

    # -- tokens ---------------------------------------------------------------------

    def _take_tokens(self, response: urllib3.BaseHTTPResponse, what: str) -> None:
        document = self._json(response, what)
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise DataspaceProtocolError(f"The dataspace answer has no access token ({what}).")
        refresh = document.get("refresh_token")
        self._access_token = token
        self._refresh_token = refresh if isinstance(refresh, str) and refresh else None

    def _login(self) -> None:
        logger.debug("Logging in to the dataspace at %s", _host(self.service))
        body, headers = self._json_body(
            {
                "username": self.connection.username,
                "password": self.connection.password.get_secret_value(),
            }
        )
        response = self._send(
            "POST", f"{self.service}/auth/login", body=body, headers=headers, what="login"
        )
        if response.status in (400, 401, 403):
            self._access_token = None
            raise DataspaceAuthError(
                f"The dataspace refused the login of user '{self.connection.username}' "
                f"(HTTP {response.status}). Check username and password in dataspace.yaml."
            )
        self._check(response, "login")
        self._take_tokens(response, "login")

    def _refresh(self) -> bool:
        """Renew the access token; False if the dataspace refused the refresh."""
        if self._refresh_token is None:
            return False
        body, headers = self._json_body({"refresh_token": self._refresh_token})
        response = self._send(
            "POST", f"{self.service}/auth/refresh", body=body, headers=headers, what="refresh"
        )
        if 400 <= response.status < 500:
            return False
        self._check(response, "refresh")
        self._take_tokens(response, "refresh")
        return True

    def _renew(self) -> None:
        if not self._refresh():
            self._login()

    def _authorized(
        self, method: str, path: str, what: str, payload: Any = None
    ) -> urllib3.BaseHTTPResponse:
        """A management request with the bearer token; one renewal and retry on 401."""
        with self._lock:
            if self._access_token is None:
                self._login()
            body, headers = (None, {}) if payload is None else self._json_body(payload)
            for attempt in range(2):
                headers["Authorization"] = f"Bearer {self._access_token}"
                response = self._send(
                    method, f"{self.service}{path}", body=body, headers=headers, what=what
                )
                if response.status != 401 or attempt:
                    break
                logger.debug("Dataspace answered 401 (%s); renewing the token", what)
                self._renew()
            self._check(response, what)
            return response

    # -- operations -----------------------------------------------------------------

    def authenticate(self) -> None:
        with self._lock:
            self._access_token = None
            self._refresh_token = None
            self._login()

    def list_objects(self) -> list[RemoteObject]:
        """Every page of the listing."""
        objects: dict[int, RemoteObject] = {}
        page: int | None = None
        for _ in range(MAX_LIST_PAGES):
            query = f"?size={LIST_PAGE_SIZE}" + ("" if page is None else f"&page={page}")
            response = self._authorized("GET", f"/management/files{query}", "list files")
            if not response.data.strip():
                break
            document = self._json(response, "list files")
            files, total, current = _listing_page(document)
            new = 0
            for entry in files:
                remote = _remote_object(entry)
                if remote.id not in objects:
                    new += 1
                objects[remote.id] = remote  # type: ignore[index]
            # Stop at the end, or if the dataspace ignores the page parameter.
            if not files or new == 0 or total is None or len(objects) >= total:
                break
            page = (current if current is not None else (page or 0)) + 1
        else:
            raise DataspaceProtocolError("The dataspace listing does not end.")
        return list(objects.values())

    def upload(
        self,
        path: Path,
        name: str,
        size: int,
        metadata: dict[str, Any],
        remote_id: int | None,
        progress: Progress,
    ) -> UploadResult:
        if remote_id is None:
            root = self.connection.virtual_group_root
            profile = (metadata.get("attributes", {}).get("pre_metadata") or {}).get("profile")
            group = (f"{root}/{profile}" if profile else root) if root else None
            response = self._authorized(
                "POST",
                "/management/files",
                "request upload URL",
                {
                    "key": name,
                    "name": name,
                    "description": None,
                    "author": None,
                    "expiresInSeconds": PRESIGN_SECONDS,
                    "metadata": metadata,
                    "virtual_group": group,
                },
            )
        else:
            response = self._authorized(
                "GET", f"/management/files/{remote_id}/upload-url", "request update URL"
            )
        document = self._json(response, "upload URL")
        url = document.get("presignedUrl") if isinstance(document, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DataspaceProtocolError("The dataspace did not send an upload URL.")
        logger.debug("Uploading %s (%d bytes) to %s", name, size, _host(url))
        with open(path, "rb") as file:
            reader = HashingReader(file, size, progress)
            response = self._send(
                "PUT",
                url,
                body=reader,
                headers={"Content-Length": str(size), "Content-Type": "application/x-hdf5"},
                what="upload",
            )
        self._check(response, "upload")
        etag = reader.md5.hexdigest()
        returned = plain_etag(response.headers.get("ETag"))
        if returned is not None and returned != etag:
            raise IntegrityError(
                f"The dataspace stored different bytes for {name}: checksum {returned}, "
                f"local {etag}."
            )
        remote = next((o for o in self.list_objects() if o.name == name), None)
        if remote is None:
            raise DataspaceProtocolError(f"{name} is missing from the listing after the upload.")
        if (remote.size is not None and remote.size != size) or (
            remote.etag is not None and remote.etag != etag
        ):
            raise IntegrityError(
                f"The dataspace object {name} does not match the local file (size "
                f"{remote.size} / {size}, checksum {remote.etag} / {etag})."
            )
        return UploadResult(remote=remote, etag=etag)

    def close(self) -> None:
        self.http.clear()


def _host(url: str) -> str:
    """Scheme, host and port only: paths may carry signatures."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _reason(response: urllib3.BaseHTTPResponse) -> str:
    try:
        document = json.loads(response.data)
    except ValueError:
        return ""
    detail = document.get("detail") if isinstance(document, dict) else None
    return f" ({str(detail)[:200]})" if isinstance(detail, str) else ""


def _listing_page(document: Any) -> tuple[list[Any], int | None, int | None]:
    if isinstance(document, list):
        return document, len(document), None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise DataspaceProtocolError("The dataspace listing has no 'files' list.")
    total = document.get("total")
    page = document.get("page")
    return (
        document["files"],
        total if isinstance(total, int) else None,
        page if isinstance(page, int) else None,
    )


def _remote_object(entry: Any) -> RemoteObject:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("id"), int)
        or not isinstance(entry.get("name"), str)
    ):
        raise DataspaceProtocolError("The dataspace listing has an entry without id or name.")
    size = entry.get("s3_size")
    status = entry.get("last_status")
    return RemoteObject(
        name=entry["name"],
        id=entry["id"],
        size=size if isinstance(size, int) else None,
        etag=plain_etag(entry.get("etag")) if isinstance(entry.get("etag"), str) else None,
        last_modified=_when(entry.get("s3_lastmodified")),
        status=status if isinstance(status, str) else "available",
    )


# -- S3 ----------------------------------------------------------------------------------


class S3Connector:
    """Any S3-compatible store. Files up to one part go in one PUT, larger ones as
    a multipart upload with a few parts in flight; every part carries its
    Content-MD5, and the object's size and ETag are checked afterwards."""

    kind = "s3"
    manage_url: str | None = None

    def __init__(
        self,
        connection: S3Connection,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        part_size: int = PART_SIZE,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.connection = connection
        self.part_size = part_size
        self.prefix = connection.key("")  # every object key starts with it
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=PART_CONCURRENCY + 2,
            # Plain bodies with Content-MD5: understood by every S3-compatible store.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={
                "addressing_style": "path" if connection.endpoint_url else "auto",
                # Every body carries its Content-MD5, which the store checks; a
                # SHA-256 of the payload in the signature would hash it twice.
                "payload_signing_enabled": False,
            },
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=connection.endpoint_url,
            region_name=connection.region or "us-east-1",
            aws_access_key_id=connection.access_key_id,
            aws_secret_access_key=connection.secret_access_key.get_secret_value(),
            config=config,
        )
        self.where = f"bucket '{connection.bucket}'" + (
            f" at {_host(connection.endpoint_url)}" if connection.endpoint_url else ""
        )

    def _call[T](self, what: str, call: Callable[[], T]) -> T:
        from botocore import exceptions as boto

        try:
            return call()
        except (boto.ConnectTimeoutError, boto.ReadTimeoutError) as error:
            raise DataspaceTimeoutError(
                f"The S3 store ({self.where}) did not answer in time ({what})."
            ) from error
        except (boto.EndpointConnectionError, boto.ConnectionClosedError) as error:
            raise DataspaceUnreachableError(
                f"The S3 store ({self.where}) cannot be reached ({what})."
            ) from error
        except boto.ClientError as error:
            raise self._client_error(what, error) from error
        except boto.ResponseParserError as error:
            raise DataspaceProtocolError(
                f"The S3 store ({self.where}) sent an answer that cannot be understood ({what})."
            ) from error
        except (boto.BotoCoreError, ValueError) as error:
            raise DataspaceError(
                f"The S3 request failed ({what}): {type(error).__name__}."
            ) from error

    def _client_error(self, what: str, error: Any) -> DataspaceError:
        info = error.response.get("Error", {})
        code = str(info.get("Code") or "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{code or 'HTTP ' + str(status)}"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or status in (
            401,
            403,
        ):
            return DataspaceAuthError(
                f"The S3 store ({self.where}) refused the credentials ({what}: {text}). "
                "Check access_key_id and secret_access_key in dataspace.yaml."
            )
        if code == "NoSuchBucket" or (status == 404 and what == "check bucket"):
            return DataspaceRefusedError(f"The S3 store has no {self.where}.")
        if status >= 500 or status == 0:
            return DataspaceError(f"The S3 store ({self.where}) failed ({what}: {text}).")
        return DataspaceRefusedError(
            f"The S3 store ({self.where}) refused the request ({what}: {text})."
        )

    def authenticate(self) -> None:
        bucket = self.connection.bucket
        self._call("check bucket", lambda: self.client.head_bucket(Bucket=bucket))

    def list_objects(self) -> list[RemoteObject]:
        """Every object under the key prefix (all pages)."""
        objects = []
        for page in self._call("list objects", self._pages):
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(self.prefix) :]
                if "/" in name or name.endswith(METADATA_SUFFIX):
                    continue
                objects.append(
                    RemoteObject(
                        name=name,
                        id=None,
                        size=int(item.get("Size", 0)),
                        etag=plain_etag(item.get("ETag")),
                        last_modified=_when(item.get("LastModified")),
                        status="available",
                    )
                )
        return objects

    def _pages(self) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        return list(paginator.paginate(Bucket=self.connection.bucket, Prefix=self.prefix))

    def upload(
        self,
        path: Path,
        name: str,
        size: int,
        metadata: dict[str, Any],
        remote_id: int | None,
        progress: Progress,
    ) -> UploadResult:
        key = self.connection.key(name)
        bucket = self.connection.bucket
        object_metadata = self._object_metadata(key, metadata)
        part_size = part_size_for(size, self.part_size)
        logger.debug("Uploading %s (%d bytes) to %s as %s", name, size, self.where, key)
        with open(path, "rb") as file:
            if size <= part_size:
                data = _read_exactly(file, size)
                digest = hashlib.md5(data, usedforsecurity=False).digest()
                self._call(
                    "upload",
                    lambda: self.client.put_object(
                        Bucket=bucket,
                        Key=key,
                        Body=data,
                        ContentMD5=base64.b64encode(digest).decode("ascii"),
                        ContentType="application/x-hdf5",
                        Metadata=object_metadata,
                    ),
                )
                progress(size)
                etag = digest.hex()
            else:
                etag = self._multipart(file, key, size, part_size, object_metadata, progress)
        head = self._call("check object", lambda: self.client.head_object(Bucket=bucket, Key=key))
        remote_size = int(head.get("ContentLength", -1))
        remote_etag = plain_etag(head.get("ETag"))
        if remote_size != size or remote_etag != etag:
            raise IntegrityError(
                f"The S3 object {key} does not match the local file (size {remote_size} / "
                f"{size}, checksum {remote_etag} / {etag})."
            )
        remote = RemoteObject(
            name=name,
            id=None,
            size=remote_size,
            etag=remote_etag,
            last_modified=_when(head.get("LastModified")),
            status="available",
        )
        return UploadResult(remote=remote, etag=etag)

    def _object_metadata(self, key: str, metadata: dict[str, Any]) -> dict[str, str]:
        document = json.dumps(metadata, ensure_ascii=True, separators=(",", ":"), default=str)
        if len(document) <= INLINE_METADATA_BYTES:
            return {"icoapi-metadata": document}
        sidecar = f"{key}{METADATA_SUFFIX}"
        self._call(
            "upload metadata",
            lambda: self.client.put_object(
                Bucket=self.connection.bucket,
                Key=sidecar,
                Body=document.encode("ascii"),
                ContentType="application/json",
            ),
        )
        return {"icoapi-metadata-object": quote(sidecar)}

    def _multipart(
        self,
        file: BinaryIO,
        key: str,
        size: int,
        part_size: int,
        object_metadata: dict[str, str],
        progress: Progress,
    ) -> str:
        bucket = self.connection.bucket
        created = self._call(
            "start multipart upload",
            lambda: self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType="application/x-hdf5", Metadata=object_metadata
            ),
        )
        upload_id = created["UploadId"]
        digests: list[bytes] = []
        parts: list[dict[str, Any]] = []
        sent = 0
        sent_lock = threading.Lock()

        def send(number: int, data: bytes, digest: bytes) -> dict[str, Any]:
            nonlocal sent
            answer = self._call(
                f"upload part {number}",
                lambda: self.client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ContentMD5=base64.b64encode(digest).decode("ascii"),
                ),
            )
            if plain_etag(answer.get("ETag")) != digest.hex():
                raise IntegrityError(f"The S3 store stored part {number} of {key} differently.")
            with sent_lock:
                sent += len(data)
                progress(sent)
            return {"PartNumber": number, "ETag": answer["ETag"]}

        try:
            with ThreadPoolExecutor(PART_CONCURRENCY, thread_name_prefix="s3-part") as pool:
                pending: deque[Future[dict[str, Any]]] = deque()
                for number, data in enumerate(_parts(file, size, part_size), start=1):
                    digest = hashlib.md5(data, usedforsecurity=False).digest()
                    digests.append(digest)
                    # At most PART_CONCURRENCY parts in memory.
                    if len(pending) >= PART_CONCURRENCY:
                        parts.append(pending.popleft().result())
                    pending.append(pool.submit(send, number, data, digest))
                while pending:
                    parts.append(pending.popleft().result())
            self._call(
                "complete multipart upload",
                lambda: self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception as error:
                logger.debug("Could not abort multipart upload of %s: %s", key, error)
            raise
        return multipart_etag(digests)

    def close(self) -> None:
        self.client.close()


def _read_exactly(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise DataspaceError("The file became shorter during the upload.")
    return data


def _parts(file: BinaryIO, size: int, part_size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        data = _read_exactly(file, min(part_size, remaining))
        remaining -= len(data)
        yield data
