"""The HTTP runtime: loads one compiled graph at start-up and serves it over FastAPI/Uvicorn."""
