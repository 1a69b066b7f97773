# Shoebox service image (CPU). Models are put in place at build time from a mirror directory passed
# as build context `models-mirror`; the text-alignment head is trained then on the Flickr8k training
# photos passed as build context `alignment-data` (mounted, not copied into the image):
#   docker build --build-context models-mirror=../shared/models \
#                --build-context alignment-data=../shared/testdata/flickr8k_train .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libimage-exiftool-perl make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -e '.[export,distributed]' \
    && .venv/bin/pip install --no-cache-dir --no-deps facenet-pytorch==2.6.0
COPY --from=models-mirror . /mirror
RUN --mount=type=bind,from=alignment-data,target=/alignment-data \
    SHOEBOX_MODEL_MIRROR=/mirror SHOEBOX_TEXT_ALIGNMENT_DATA=/alignment-data \
    .venv/bin/python -m onnx_models.setup && rm -rf /mirror .export-cache
ENV SHOEBOX_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
# The same image runs a distributed worker (docs/deploy.md):
#   docker run ... shoebox .venv/bin/python -m services.jobs.worker --queues analysis --threads 2
CMD [".venv/bin/uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--timeout-keep-alive", "5", "--limit-concurrency", "200", "--timeout-graceful-shutdown", "30"]
