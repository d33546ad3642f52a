# ewarn worker / simulator / CLI image.
#   docker build -t ewarn:0.1.0 .
#   docker run --rm ewarn:0.1.0 --help
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY agents ./agents
COPY schemas ./schemas
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/ewarn --create-home ewarn \
    && mkdir -p /var/lib/ewarn/state \
    && chown -R ewarn:ewarn /var/lib/ewarn

USER ewarn
WORKDIR /var/lib/ewarn
# 6066: Faust web; 9100: Prometheus /metrics (EWARN_METRICS_PORT).
EXPOSE 6066 9100
ENTRYPOINT ["ewarn"]
CMD ["--help"]
