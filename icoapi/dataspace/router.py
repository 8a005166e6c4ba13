"""HTTP layer of the dataspace: upload and update (queued), re-authentication,
the remote listing and the upload queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status
from fastapi import Path as PathParam

from icoapi.core.errors import error_responses
from icoapi.core.tasks import run_blocking
from icoapi.dataspace.deps import DataspaceDep
from icoapi.dataspace.errors import (
    DataspaceDisabledError,
    DataspaceError,
    DataspaceMisconfiguredError,
    DataspaceTimeoutError,
    FileIdRequiredError,
    JobNotFoundError,
    JobStateError,
)
from icoapi.dataspace.schemas import (
    RemoteFile,
    UpdateRequest,
    UploadJob,
    UploadQueueResponse,
    UploadRequest,
)
from icoapi.files.deps import FilesDep
from icoapi.files.errors import FileInUseError, InvalidFileNameError, MeasurementFileNotFoundError
from icoapi.state.schemas import CloudState

router = APIRouter(prefix="/cloud", tags=["Dataspace"])

JobId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="The upload job's id.")]

CONFIG_ERRORS = (DataspaceDisabledError, DataspaceMisconfiguredError)
FILE_ERRORS = (InvalidFileNameError, MeasurementFileNotFoundError, FileInUseError)
REMOTE_ERRORS = (DataspaceError, DataspaceTimeoutError)


@router.post(
    "/upload",
    response_model=UploadJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(*FILE_ERRORS, *CONFIG_ERRORS),
)
async def upload(body: UploadRequest, dataspace: DataspaceDep, files: FilesDep) -> UploadJob:
    """Queue the upload of a measurement file (by name). The answer is the job;
    its progress shows in ``GET /cloud/queue``, ``GET /files`` and ``/state``."""
    path = await run_blocking(files.resolve, body.filename)
    files.ensure_not_in_use(path)
    return await dataspace.upload(path)


@router.post(
    "/update",
    response_model=UploadJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(FileIdRequiredError, *FILE_ERRORS, *CONFIG_ERRORS),
)
async def update(body: UpdateRequest, dataspace: DataspaceDep, files: FilesDep) -> UploadJob:
    """Queue the upload of a newer version of a file that is in the dataspace
    (Trident: ``file_id`` is the object's id)."""
    path = await run_blocking(files.resolve, body.filename)
    files.ensure_not_in_use(path)
    return await dataspace.upload(path, body.file_id, update=True)


@router.post("/authenticate", response_model=CloudState, responses=error_responses(*REMOTE_ERRORS))
async def authenticate(dataspace: DataspaceDep) -> CloudState:
    """Re-read ``dataspace.yaml``, log in again and refresh the listing. Waiting
    uploads are tried right away when this succeeds."""
    return await dataspace.authenticate()


@router.get(
    "",
    response_model=list[RemoteFile],
    responses=error_responses(*CONFIG_ERRORS, *REMOTE_ERRORS),
)
async def list_remote(dataspace: DataspaceDep) -> list[RemoteFile]:
    """The measurement files in the dataspace (every page of the listing)."""
    return await dataspace.list_remote()


@router.get("/queue", response_model=UploadQueueResponse)
async def queue(dataspace: DataspaceDep) -> UploadQueueResponse:
    """Upload jobs, newest first (finished ones are kept for a while)."""
    return UploadQueueResponse(jobs=await dataspace.jobs())


@router.get(
    "/queue/{job_id}", response_model=UploadJob, responses=error_responses(JobNotFoundError)
)
async def job(job_id: JobId, dataspace: DataspaceDep) -> UploadJob:
    return await dataspace.job(job_id)


@router.post(
    "/queue/{job_id}/retry",
    response_model=UploadJob,
    responses=error_responses(JobNotFoundError, JobStateError),
)
async def retry(job_id: JobId, dataspace: DataspaceDep) -> UploadJob:
    """Run a failed, cancelled or waiting job again now."""
    return await dataspace.retry(job_id)


@router.post(
    "/queue/{job_id}/cancel",
    response_model=UploadJob,
    responses=error_responses(JobNotFoundError, JobStateError),
)
async def cancel(job_id: JobId, dataspace: DataspaceDep) -> UploadJob:
    """Cancel a queued or running job (a running upload stops at its next block)."""
    return await dataspace.cancel(job_id)
