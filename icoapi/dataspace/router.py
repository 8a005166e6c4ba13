"""HTTP layer of the dataspace: upload and update (queued, answered when done
or after a wait), re-authentication, the remote listing and the upload queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

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
    UploadCancelledByUserError,
    UploadFileMissingError,
    job_failure,
)
from icoapi.dataspace.queue import JobState
from icoapi.dataspace.schemas import (
    CloudState,
    RemoteFile,
    UpdateRequest,
    UploadJob,
    UploadQueueResponse,
    UploadRequest,
)
from icoapi.files.deps import FilesDep
from icoapi.files.errors import FileInUseError, InvalidFileNameError, MeasurementFileNotFoundError

router = APIRouter(prefix="/cloud", tags=["Dataspace"])

JobId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="The upload job's id.")]

CONFIG_ERRORS = (DataspaceDisabledError, DataspaceMisconfiguredError)
FILE_ERRORS = (InvalidFileNameError, MeasurementFileNotFoundError, FileInUseError)
REMOTE_ERRORS = (DataspaceError, DataspaceTimeoutError)


WaitSeconds = Annotated[
    float | None,
    Query(
        ge=0,
        le=600,
        description="Seconds to wait for the job (default ICOAPI_UPLOAD_WAIT_SECONDS); "
        "0: answer 202 at once.",
    ),
]
JOB_ERRORS = (
    DataspaceError,
    DataspaceTimeoutError,
    UploadFileMissingError,
    UploadCancelledByUserError,
)
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": UploadJob, "description": "Still queued or running: the job."}
}


async def _answer(
    request: Request, dataspace: DataspaceDep, job: UploadJob, wait: float | None
) -> Response | UploadJob:
    """200 with the job when it is done, its error when it failed, 202 when it
    takes longer than the wait."""
    seconds = request.app.state.settings.ICOAPI_UPLOAD_WAIT_SECONDS if wait is None else wait
    if seconds > 0:
        job = await dataspace.wait_for_job(job.id, seconds)
    if job.state is JobState.DONE:
        return job
    if job.state is JobState.FAILED:
        raise job_failure(job.error_status, job.last_error)
    if job.state is JobState.CANCELLED:
        raise UploadCancelledByUserError()
    return JSONResponse(job.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/upload",
    response_model=UploadJob,
    responses={**ACCEPTED, **error_responses(*FILE_ERRORS, *CONFIG_ERRORS, *JOB_ERRORS)},
)
async def upload(
    body: UploadRequest,
    request: Request,
    dataspace: DataspaceDep,
    files: FilesDep,
    wait: WaitSeconds = None,
) -> Response | UploadJob:
    """Upload a measurement file (by name). The job is queued, and the answer
    waits for it: 200 when the file is in the dataspace, the error when it
    failed, 202 with the job when it takes longer than the wait (its progress
    shows in ``GET /cloud/queue``, ``GET /files`` and ``/state``)."""
    path = await run_blocking(files.resolve, body.filename)
    files.ensure_not_in_use(path)
    return await _answer(request, dataspace, await dataspace.upload(path), wait)


@router.post(
    "/update",
    response_model=UploadJob,
    responses={
        **ACCEPTED,
        **error_responses(FileIdRequiredError, *FILE_ERRORS, *CONFIG_ERRORS, *JOB_ERRORS),
    },
)
async def update(
    body: UpdateRequest,
    request: Request,
    dataspace: DataspaceDep,
    files: FilesDep,
    wait: WaitSeconds = None,
) -> Response | UploadJob:
    """Upload a newer version of a file that is in the dataspace (Trident:
    ``file_id`` is the object's id); answered like ``POST /cloud/upload``."""
    path = await run_blocking(files.resolve, body.filename)
    files.ensure_not_in_use(path)
    job = await dataspace.upload(path, body.file_id, update=True)
    return await _answer(request, dataspace, job, wait)


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
