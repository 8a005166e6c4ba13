"""The S3 connector: any S3-compatible store (MinIO, Ceph RGW, AWS S3) through boto3."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any, BinaryIO, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, SecretStr

from icoapi.configuration.schemas import NonEmptyStr, no_outer_slash, secret_not_blank
from icoapi.dataspace.connectors.base import (
    ConnectionSettings,
    ConnectorOptions,
    RemoteObject,
    Upload,
    UploadResult,
    host_of,
    when,
)
from icoapi.dataspace.connectors.checksums import (
    etag_scheme,
    multipart_etag,
    part_size_for,
    plain_etag,
)
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

PART_CONCURRENCY = 6
# S3 user metadata is limited to 2 KiB in total; larger metadata documents go
# into a sidecar object next to the file.
INLINE_METADATA_BYTES = 1536
METADATA_SUFFIX = ".metadata.json"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _bucket_name(value: str) -> str:
    # The S3 naming rules, so a typo is reported here and not by the store.
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value:
        raise ValueError("expected a bucket name of 3 to 63 lowercase letters, digits, '.' and '-'")
    return value


class S3Connection(ConnectionSettings):
    """A connection to an S3-compatible store (MinIO, Ceph RGW, AWS S3)."""

    connector: Literal["s3"]
    endpoint_url: Annotated[NonEmptyStr, AfterValidator(_http_url)] | None = Field(
        default=None, description="Absent: AWS S3."
    )
    region: Annotated[NonEmptyStr, Field(description="e.g. eu-central-1")] | None = None
    bucket: Annotated[NonEmptyStr, AfterValidator(_bucket_name)]
    bucket_folder: Annotated[str, Field(strict=True), AfterValidator(no_outer_slash)] | None = (
        Field(default=None, description="Key prefix of the objects.")
    )
    # A key id alone grants nothing, but it is half of the credentials: kept
    # out of downloads and logs like the secret.
    access_key_id: Annotated[SecretStr, AfterValidator(secret_not_blank)]
    secret_access_key: Annotated[SecretStr, AfterValidator(secret_not_blank)]

    def key(self, name: str) -> str:
        """The object key of the measurement file ``name``."""
        return f"{self.bucket_folder}/{name}" if self.bucket_folder else name


class S3Connector:
    """Any S3-compatible store. Files up to one part go in one PUT, larger ones as
    a multipart upload with a few parts in flight; every part carries its
    Content-MD5, and the object's size and ETag are checked afterwards."""

    kind = "s3"
    manage_url: str | None = None

    def __init__(self, connection: S3Connection, options: ConnectorOptions) -> None:
        import boto3
        from botocore.config import Config

        self.connection = connection
        self.part_size = options.part_size
        self.prefix = connection.key("")  # every object key starts with it
        config = Config(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
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
            aws_access_key_id=connection.access_key_id.get_secret_value(),
            aws_secret_access_key=connection.secret_access_key.get_secret_value(),
            config=config,
        )
        self.where = f"bucket '{connection.bucket}'" + (
            f" at {host_of(connection.endpoint_url)}" if connection.endpoint_url else ""
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
                objects.append(self._remote(name, item.get("Size"), item))
        return objects

    def _remote(self, name: str, size: Any, item: dict[str, Any]) -> RemoteObject:
        modified = when(item.get("LastModified"))
        etag = plain_etag(item.get("ETag"))
        return RemoteObject(
            name=name,
            id=None,
            size=int(size or 0),
            etag=etag,
            last_modified=modified,
            status="available",
            details={
                "bucket": self.connection.bucket,
                "objectname": self.connection.key(name),
                "name": name,
                "s3_size": int(size or 0),
                "s3_lastmodified": modified.isoformat() if modified else None,
                "etag": etag,
                "last_status": "available",
            },
        )

    def _pages(self) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        return list(paginator.paginate(Bucket=self.connection.bucket, Prefix=self.prefix))

    def upload(self, upload: Upload) -> UploadResult:
        path, name, size, progress = upload.path, upload.name, upload.size, upload.progress
        key = self.connection.key(name)
        bucket = self.connection.bucket
        object_metadata = self._object_metadata(key, upload.metadata)
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
                etag = self._multipart(file, key, part_size, object_metadata, upload)
        head = self._call("check object", lambda: self.client.head_object(Bucket=bucket, Key=key))
        remote_size = int(head.get("ContentLength", -1))
        remote_etag = plain_etag(head.get("ETag"))
        if remote_size != size or remote_etag != etag:
            raise IntegrityError(
                f"The S3 object {key} does not match the local file (size {remote_size} / "
                f"{size}, checksum {remote_etag} / {etag})."
            )
        remote = self._remote(name, remote_size, head)
        return UploadResult(remote=remote, etag=etag)

    def checksum_scheme(self, etag: str, size: int) -> int:
        return etag_scheme(etag, size, self.part_size)

    def abort_multipart(self, name: str, upload_id: str) -> None:
        key = self.connection.key(name)
        self._abort(key, upload_id)
        logger.info("Aborted the interrupted multipart upload of %s", key)

    def _abort(self, key: str, upload_id: str) -> None:
        bucket = self.connection.bucket
        self._call(
            "abort multipart upload",
            lambda: self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
        )

    def abort_stale_multipart(self, older_than: float) -> int:
        """Abort multipart uploads under the key prefix started more than
        ``older_than`` seconds ago (needs s3:ListBucketMultipartUploads and
        s3:AbortMultipartUpload)."""
        bucket = self.connection.bucket
        paginator = self.client.get_paginator("list_multipart_uploads")
        pages = self._call(
            "list multipart uploads",
            lambda: list(paginator.paginate(Bucket=bucket, Prefix=self.prefix)),
        )
        cutoff = time.time() - older_than
        aborted = 0
        for page in pages:
            for item in page.get("Uploads", []):
                started = when(item.get("Initiated"))
                if started is None or started.timestamp() > cutoff:
                    continue
                self._abort(str(item["Key"]), str(item["UploadId"]))
                aborted += 1
        if aborted:
            logger.info("Aborted %d abandoned multipart upload(s) in %s", aborted, self.where)
        return aborted

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
        part_size: int,
        object_metadata: dict[str, str],
        upload: Upload,
    ) -> str:
        size, progress = upload.size, upload.progress
        bucket = self.connection.bucket
        created = self._call(
            "start multipart upload",
            lambda: self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType="application/x-hdf5", Metadata=object_metadata
            ),
        )
        upload_id = created["UploadId"]
        # Remembered with the job: a kill leaves the parts behind, and the next
        # start aborts them.
        upload.multipart_started(upload_id)
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
