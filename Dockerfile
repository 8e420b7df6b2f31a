# voiceauth: the production image (one `voiceauth serve` process per container; run several behind a load
# balancer, all on one PostgreSQL; see compose.yaml). Models are fetched and sha256-verified at build time, so
# the container needs no network at run time.
FROM python:3.11-slim

# espeak-ng speaks the IVR prompts (without it prompts are a chime); libgomp for torch's CPU kernels
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VOICEAUTH_HOME=/opt/voiceauth \
    VOICEAUTH_DATA_DIR=/var/lib/voiceauth \
    VOICEAUTH_IVR_PROMPT_DIR=/var/lib/voiceauth/prompts \
    VOICEAUTH_OFFLINE=true \
    VOICEAUTH_GENERATE_DATA_KEY=false \
    OMP_WAIT_POLICY=PASSIVE

WORKDIR /src
# CPU-only torch first (the default wheel pulls CUDA libraries); pinned as in pyproject.toml
RUN pip install torch==2.14.1 torchaudio==2.11.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY voiceauth ./voiceauth
COPY models ./models
COPY ivr ./ivr
COPY enrollment ./enrollment
COPY benchmarks ./benchmarks
RUN pip install . \
    && voiceauth models fetch \
    && voiceauth models verify

RUN useradd --system --uid 10001 --home-dir /var/lib/voiceauth --create-home voiceauth \
    && mkdir -p /var/lib/voiceauth/prompts && chown -R voiceauth /var/lib/voiceauth
USER voiceauth
WORKDIR /var/lib/voiceauth

EXPOSE 8000
# ready = model loaded, database reachable, not draining
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"
# exec form: serve is PID 1 and gets SIGTERM itself (drains calls for VOICEAUTH_API_DRAIN_S, default 30 s)
CMD ["voiceauth", "serve", "--no-demo", "--host", "0.0.0.0", "--port", "8000"]
