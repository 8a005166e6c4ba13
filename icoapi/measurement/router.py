from fastapi import APIRouter

router = APIRouter(prefix="/measurement", tags=["Measurement"])
