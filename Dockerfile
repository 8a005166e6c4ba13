# icoapi in a container. SocketCAN needs the host's network namespace:
#   docker build -t icoapi .
#   docker run --network=host -v icoapi-data:/data icoapi
# Without hardware, try the simulator:
#   docker run --network=host -v icoapi-data:/data -e CAN_INTERFACE=simulator icoapi
# Settings: /data/.env in the volume (environment variables given to `docker run`
# win over it). Access tokens (kept in /data/tokens.yaml; restart afterwards):
#   docker exec <container> python -m icoapi.access add <name> --role operator
# Any Debian-based image with python3 (>= 3.12, < 3.14) and its venv module can be
# the base, e.g. one built locally: docker build --build-arg BASE_IMAGE=my/python:3.13 .
ARG BASE_IMAGE=python:3.12-slim-trixie

FROM ${BASE_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The runtime packages pinned in poetry.lock (main group only, hashes checked).
# A new project version changes pyproject.toml but not this list, so the
# dependency layer below stays cached.
FROM base AS requirements
WORKDIR /build
COPY pyproject.toml poetry.lock ./
COPY scripts/deploy/requirements-from-lock.py ./
RUN python3 requirements-from-lock.py . > requirements.txt

FROM base AS dependencies
COPY --from=requirements /build/requirements.txt /build/requirements.txt
RUN python3 -m venv /venv \
 && /venv/bin/pip install --no-deps --require-hashes -r /build/requirements.txt \
 && /venv/bin/pip check

# icoapi's own package metadata (version, entry points) for the sources in /app,
# made from pyproject.toml alone; copied as a few small files into the final stage.
FROM dependencies AS metadata
RUN /venv/bin/pip install "poetry-core>=2"
WORKDIR /app
COPY pyproject.toml README.md ./
RUN mkdir icoapi && touch icoapi/__init__.py \
 && /venv/bin/pip install --no-deps --no-build-isolation --editable . \
 && site=$(/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && mkdir -p "/metadata$site" \
 && cp -r "$site"/icoapi-*.dist-info "$site"/icoapi.pth "/metadata$site/"

# The sources, compiled (the service cannot write bytecode next to them).
FROM base AS code
WORKDIR /app
COPY scripts/deploy/healthcheck.py ./healthcheck.py
COPY config ./config
COPY icoapi ./icoapi
RUN python3 -m compileall -q /app/icoapi

FROM base
# The service's user (uid 1000 matches the first user of a Raspberry Pi OS host,
# for bind mounts). It owns /data and nothing else; raw CAN sockets need no privileges.
ARG ICOAPI_UID=1000
RUN groupadd --gid "$ICOAPI_UID" icoapi \
 && useradd --uid "$ICOAPI_UID" --gid icoapi --home-dir /data --no-create-home --shell /usr/sbin/nologin icoapi \
 && mkdir /data /app && chown icoapi:icoapi /data
COPY --from=dependencies /venv /venv
ENV PATH=/venv/bin:$PATH \
    ICOAPI_DATA_DIR=/data \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER icoapi
VOLUME ["/data"]
EXPOSE 33215
# Asks /api/v1/health on the port and address the settings (/data/.env) name.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "/app/healthcheck.py"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "icoapi"]
# Last, so a code or docs change rebuilds only these small layers (owned by root).
COPY --from=metadata /metadata/ /
COPY --from=code /app/ /app/
