"""Server-rendered pages (placeholder until the full UI lands)."""

from fastapi import APIRouter

router = APIRouter(prefix="/hub")
