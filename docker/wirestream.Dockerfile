# wirestream's Python services (producer, file analysis, stats, CLI).
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 libpcap0.8 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir /src
USER nobody
ENTRYPOINT []
