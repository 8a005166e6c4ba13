# icoapi in a container. SocketCAN needs the host's network namespace:
#   docker build -t icoapi .
#   docker run --network=host -v icoapi-data:/data icoapi
# Without hardware, try the simulator:
#   docker run --network=host -e CAN_INTERFACE=simulator icoapi
# Access tokens (kept in /data/tokens.yaml; restart the container afterwards):
#   docker exec <container> python -m icoapi.access add <name> --role operator
FROM python:3.12-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ICOAPI_DATA_DIR=/data \
    VITE_API_HOSTNAME=0.0.0.0 \
    VITE_API_PORT=33215

WORKDIR /app
RUN pip install --no-cache-dir "poetry==2.5.1"
COPY pyproject.toml poetry.lock README.md ./
RUN poetry config virtualenvs.create false \
 && poetry install --only main --no-root --no-interaction
COPY icoapi ./icoapi
COPY config ./config
RUN poetry install --only main --no-interaction

VOLUME ["/data"]
EXPOSE 33215
CMD ["icoapi"]
