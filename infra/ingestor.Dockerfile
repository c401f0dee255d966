# The Databento ingestor image: `spymaster ingest`, Databento Live -> the mbo_raw topic or event hub.
# Build from the repository root:  make images   (or: docker build -f infra/ingestor.Dockerfile -t spymaster-ingestor .)
# The Databento key and the Event Hubs connection string are read at run time (SPYMASTER_KEYVAULT
# with the pod's identity, or DATABENTO_API_KEY / EVENTHUBS_CONNECTION_STRING); none is built in.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY operators ./operators
COPY connectors ./connectors
COPY replay ./replay
RUN pip install --no-cache-dir --editable .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    NUMBA_CACHE_DIR=/tmp/numba-cache
RUN groupadd --gid 10001 spymaster \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin spymaster
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
# Healthy while the report loop keeps touching its file (every --report seconds, 10 by default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, time; sys.exit(time.time() - os.stat('/tmp/ingest.alive').st_mtime > 120)"]
# Arguments after the image name go to `spymaster ingest` (default: Event Hubs, ES futures).
ENTRYPOINT ["spymaster", "ingest", "--health-file", "/tmp/ingest.alive"]
CMD ["--eventhubs", "--topic", "mbo_raw"]
