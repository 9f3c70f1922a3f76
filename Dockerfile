# The stompgate image: one image for the gateway nodes, the workers and the broker set-up
# (compose.yaml picks the command). Build: docker build -t stompgate .

# The demo chat page (web/: TypeScript, Preact, @stomp/stompjs), built with Node.js into
# gateway/static/app; only that output goes into the image.
FROM node:20-slim AS web
WORKDIR /src
COPY web/package.json web/package-lock.json ./web/
RUN cd web && npm ci --no-audit --no-fund --loglevel=error
COPY web ./web
RUN cd web && npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir gateway store workers schemas \
    && touch gateway/__init__.py store/__init__.py workers/__init__.py schemas/__init__.py \
    && pip install . \
    && pip uninstall --yes stompgate \
    && rm -rf gateway store workers schemas

COPY gateway ./gateway
COPY --from=web /src/gateway/static/app ./gateway/static/app
COPY store ./store
COPY workers ./workers
COPY schemas ./schemas
COPY rabbitmq ./rabbitmq
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app stompgate \
    && mkdir -p /app/var && chown stompgate /app/var
USER stompgate

# 15680: HTTP (/ws, /healthz, /readyz, /metrics, the HTTP APIs, the demo page at /); 61613: STOMP over TCP;
# 9108: a worker's /healthz and /metrics.
EXPOSE 15680 61613 9108
STOPSIGNAL SIGTERM
CMD ["python", "-m", "gateway"]
