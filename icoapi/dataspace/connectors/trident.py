"""The Trident connector: the Trident REST protocol (login, bearer tokens,
presigned upload URLs, paged listing)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any, Literal

import urllib3
from pydantic import AfterValidator, Field, SecretStr

from icoapi.configuration.schemas import NonEmptyStr, OptionalStr, no_outer_slash, secret_not_blank
from icoapi.dataspace.connectors.base import (
    PART_SIZE,
    ConnectionSettings,
    ConnectorOptions,
    RemoteObject,
    Upload,
    UploadResult,
    host_of,
    when,
)
from icoapi.dataspace.connectors.checksums import HashingReader, etag_scheme, plain_etag
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

PRESIGN_SECONDS = 600
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 10_000


class TridentConnection(ConnectionSettings):
    """A Trident connection in use: everything needed to log in is required.
    ``connector`` may be absent (files written before there was a choice)."""

    connector: Literal["trident"] = "trident"
    protocol: Literal["http", "https"]
    domain: Annotated[NonEmptyStr, AfterValidator(no_outer_slash)]
    base_path: Annotated[NonEmptyStr, AfterValidator(no_outer_slash)]
    username: NonEmptyStr
    password: Annotated[SecretStr, AfterValidator(secret_not_blank)]
    bucket: NonEmptyStr
    manage_assets_path: OptionalStr = None
    virtual_group_root: OptionalStr = Field(
        default=None, description="Files go to <root>/<profile>."
    )

    @property
    def service(self) -> str:
        return f"{self.protocol}://{self.domain}/{self.base_path}"


class TridentConnector:
    """The Trident REST protocol.

    The access token is kept and reused; a request answered 401 refreshes it (or
    logs in again if the refresh is refused) and is retried once. The refresh
    token travels in the request body."""

    kind = "trident"

    def __init__(self, connection: TridentConnection, options: ConnectorOptions) -> None:
        self.connection = connection
        self.service = connection.service
        self.manage_url = (
            f"{self.service}/{connection.manage_assets_path}"
            if connection.manage_assets_path
            else None
        )
        self.timeout = urllib3.Timeout(connect=options.connect_timeout, read=options.read_timeout)
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
                f"The dataspace at {host_of(url)} cannot be reached ({what}): connection failed."
            ) from error
        except urllib3.exceptions.TimeoutError as error:
            raise DataspaceTimeoutError(
                f"The dataspace at {host_of(url)} did not answer in time ({what})."
            ) from error
        except urllib3.exceptions.HTTPError as error:
            raise DataspaceUnreachableError(
                f"The dataspace at {host_of(url)} cannot be reached ({what}): "
                f"{type(error).__name__}."
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
        logger.debug("Logging in to the dataspace at %s", host_of(self.service))
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

    def upload(self, upload: Upload) -> UploadResult:
        name, size = upload.name, upload.size
        remote_id = upload.remote_id
        if remote_id is None:
            url, remote_id = self._create(upload)
            if remote_id is not None:
                # Before the data goes out: a retry after a failed PUT asks for a
                # new URL for this object instead of creating another one.
                upload.remote_created(remote_id)
        else:
            response = self._authorized(
                "GET", f"/management/files/{remote_id}/upload-url", "request update URL"
            )
            url = self._upload_url(response)
        logger.debug("Uploading %s (%d bytes) to %s", name, size, host_of(url))
        with open(upload.path, "rb") as file:
            reader = HashingReader(file, size, upload.progress)
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
        listing = self.list_objects()
        remote = _find(listing, name, remote_id)
        if remote is None:
            raise DataspaceProtocolError(f"{name} is missing from the listing after the upload.")
        if (remote.size is not None and remote.size != size) or (
            remote.etag is not None and remote.etag != etag
        ):
            raise IntegrityError(
                f"The dataspace object {name} does not match the local file (size "
                f"{remote.size} / {size}, checksum {remote.etag} / {etag})."
            )
        return UploadResult(remote=remote, etag=etag, listing=listing)

    def _create(self, upload: Upload) -> tuple[str, int | None]:
        """A new object: its upload URL and, if it can be found, its id."""
        root = self.connection.virtual_group_root
        profile = (upload.metadata.get("attributes", {}).get("pre_metadata") or {}).get("profile")
        group = (f"{root}/{profile}" if profile else root) if root else None
        response = self._authorized(
            "POST",
            "/management/files",
            "request upload URL",
            {
                "key": upload.name,
                "name": upload.name,
                "description": None,
                "author": None,
                "expiresInSeconds": PRESIGN_SECONDS,
                "metadata": upload.metadata,
                "virtual_group": group,
            },
        )
        url = self._upload_url(response)
        document = self._json(response, "upload URL")
        remote_id = document.get("id") if isinstance(document, dict) else None
        if isinstance(remote_id, int) and not isinstance(remote_id, bool):
            return url, remote_id
        # The reference protocol answers with the URL only: the new object is the
        # newest live one of that name still waiting for its data.
        waiting = [
            o
            for o in self.list_objects()
            if o.name == upload.name and o.live and o.status == "created" and o.id is not None
        ]
        return url, max((o.id for o in waiting if o.id is not None), default=None)

    def _upload_url(self, response: urllib3.BaseHTTPResponse) -> str:
        document = self._json(response, "upload URL")
        url = document.get("presignedUrl") if isinstance(document, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DataspaceProtocolError("The dataspace did not send an upload URL.")
        return url

    def checksum_scheme(self, etag: str, size: int) -> int:
        # This service sends one PUT (a plain MD5); an object uploaded in parts
        # elsewhere most likely used the common 8 MiB parts.
        return etag_scheme(etag, size, PART_SIZE)

    def abort_multipart(self, name: str, upload_id: str) -> None:
        """Trident uploads are single PUTs: nothing to abort."""

    def abort_stale_multipart(self, older_than: float) -> int:
        return 0

    def close(self) -> None:
        self.http.clear()


def _reason(response: urllib3.BaseHTTPResponse) -> str:
    try:
        document = json.loads(response.data)
    except ValueError:
        return ""
    detail = document.get("detail") if isinstance(document, dict) else None
    return f" ({str(detail)[:200]})" if isinstance(detail, str) else ""


def _find(listing: list[RemoteObject], name: str, remote_id: int | None) -> RemoteObject | None:
    """The live object ``remote_id`` (or the only live one named ``name``)."""
    live = [o for o in listing if o.name == name and o.live]
    if remote_id is not None:
        return next((o for o in live if o.id == remote_id), None)
    return live[0] if len(live) == 1 else None


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
        last_modified=when(entry.get("s3_lastmodified")),
        status=status if isinstance(status, str) else "available",
        details=dict(entry),
    )
