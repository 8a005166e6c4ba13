from fastapi import APIRouter

router = APIRouter(prefix="/files", tags=["File Handling"])
