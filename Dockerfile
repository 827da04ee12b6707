# plusultra: one image for every role (Dagster code server, webserver, daemon, the agent service,
# training); docker/entrypoint.sh picks the role from the first argument.
#
#   docker build -t plusultra .                                         # CPU
#   docker build -t plusultra-cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .   # GPU
#
# Installed the way the Makefile installs it: torch first (the pinned build from the chosen
# index), then the project, whose wide torch range then installs nothing more.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# the project's extras: demo data packages and Dagster's Postgres storage (deploy/dagster.yaml);
# `--build-arg EXTRAS=demo,k8s` or `demo,celery` for the other deployments of deploy/
ARG EXTRAS=demo,postgres

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLUSULTRA_HOME=/data \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_WORKSPACE=/app/docker/workspace.yaml

# CUDA base images ship no Python; the slim Python image has it already (3.11+ is required)
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

RUN pip install --upgrade pip && pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"

WORKDIR /app
# editable, as `make venv` does: configs/ resolve against the source tree (settings.PROJECT_ROOT)
COPY pyproject.toml README.md workspace.yaml ./
COPY plusultra_core plusultra_core
COPY plusultra_pipeline plusultra_pipeline
COPY configs configs
COPY docker docker
RUN pip install -e ".[${EXTRAS}]" \
    && useradd --create-home --uid 10001 plusultra \
    && mkdir -p /data "${DAGSTER_HOME}" \
    && chown -R plusultra /data "${DAGSTER_HOME}"

USER plusultra
VOLUME ["/data"]
EXPOSE 3000 4000 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["serve"]
