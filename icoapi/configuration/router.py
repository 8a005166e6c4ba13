from fastapi import APIRouter

router = APIRouter(prefix="/config", tags=["Configuration"])
