from fastapi import APIRouter

router = APIRouter(prefix="/logs", tags=["Logs"])
