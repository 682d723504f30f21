# The driftline daemon. Built by docker-compose.yml (service `driftline`); also usable alone:
#   docker build -t driftline . && docker run --rm driftline --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is built from (pyproject.toml lists the packages and the schemas).
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY retrain ./retrain
COPY schemas ./schemas
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 driftline
USER driftline
WORKDIR /home/driftline

EXPOSE 8080
ENTRYPOINT ["driftline"]
CMD ["run", "--config", "/etc/driftline/driftline.yaml"]
