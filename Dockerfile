# The example app (python -m examples) with pynomaly-security installed from this tree.
# Used by docker-compose.yml, which adds Redis and PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (this layer is reused while only the code changes): install the
# project's requirements from pyproject.toml against an empty package.
COPY pyproject.toml README.md ./
RUN mkdir pynomaly_security && touch pynomaly_security/__init__.py \
    && pip install ".[postgres]" \
    && pip uninstall -y pynomaly-security \
    && rm -rf pynomaly_security build *.egg-info

COPY pynomaly_security ./pynomaly_security
COPY examples ./examples
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app app \
    && chown -R app /app

USER app

# The example binds 127.0.0.1 unless told otherwise; inside the container it must
# listen on the container's interface. docker-compose publishes it on the host's
# loopback only.
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health\", timeout=2)"]

CMD ["python", "-m", "examples"]
