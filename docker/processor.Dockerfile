# The Bro processor with a real Zeek: the official zeek/zeek image plus wirestream in a venv.
FROM zeek/zeek:lts
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libmagic1 libpcap0.8 \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN python3 -m venv /opt/wirestream && /opt/wirestream/bin/pip install --no-cache-dir /src
ENV PATH="/opt/wirestream/bin:${PATH}" WIRESTREAM_ENGINE=zeek WIRESTREAM_ZEEK_PATH=/usr/local/zeek/bin/zeek
ENTRYPOINT []
