from fastapi import APIRouter

router = APIRouter(prefix="/sensor", tags=["Sensor"])
