# docker/demo-app.Dockerfile — docker/demo_app.py with Debian's pymongo (compose.yaml).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pymongo \
 && rm -rf /var/lib/apt/lists/*
COPY docker/demo_app.py /app/demo_app.py
USER 10001:10001
CMD ["python3", "/app/demo_app.py"]
