# One image for every service of docker-compose.yml (worker, beat, web, flower): the services
# differ only by their command, which is the Procfile's.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPELINE_HOME=/data

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

# /data is created here, owned by the service user, so that a fresh named volume mounted on it
# starts with that owner and the processes can write the data lake and the models there.
RUN useradd --create-home --uid 10001 pipeline \
    && mkdir -p /data \
    && chown pipeline:pipeline /data

COPY . .
USER pipeline
VOLUME ["/data"]
EXPOSE 5000 5555
