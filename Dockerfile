# tracardi-daemon in a container. The daemon is PID 1 and handles TERM itself (graceful
# drain within shutdown.grace_s, 20 s by default); Docker's default stop timeout is 10 s,
# so stop it with more room: `docker run --stop-timeout 45 ...`, or
# `stop_grace_period: 45s` in Compose.
#
# Configuration: environment variables (ELASTIC_HOST, REDIS_HOST, REDIS_PORT,
# REDIS_PASSWORD, LICENSE, TENANT_NAME, TRACARDI_ROLES, ...; see the README) or a file
# mounted at /etc/tracardi-daemon/tracardi-daemon.toml (another path: TRACARDI_CONFIG).
#
# Dependencies come from the hash-checked lock (requirements/runtime.txt, which also pins
# the build backend), installed into a virtual environment so that the image builds the
# same on any Debian-based Python 3.11 image, including one whose system Python is
# marked externally managed. scripts/container builds it with podman for the tests.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/tracardi-daemon \
    PATH=/opt/tracardi-daemon/bin:$PATH

RUN groupadd --system tracardi \
    && useradd --system --gid tracardi --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tracardi

# The lock first, in its own layer: a change to the code alone reuses the installed
# dependencies (.dockerignore must let requirements/runtime.txt through). The base's
# python makes the environment; from then on PATH finds the environment's pip first.
# README.md is part of the package metadata (pyproject's readme), so the package build
# needs it; --no-build-isolation builds with the locked setuptools and wheel.
WORKDIR /src
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY tracardi_daemon ./tracardi_daemon
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && tracardi-daemon --version \
    && rm -rf /src
WORKDIR /

# The health socket's directory belongs to the daemon's user; 0750 as under systemd.
# The configuration directory exists so that a file can be mounted into it.
RUN install -d -o tracardi -g tracardi -m 0750 /run/tracardi-daemon \
    && install -d -m 0755 /etc/tracardi-daemon

# TRACARDI_ROLES defaults to `upgrade` (migrations), the role that needs no licence; set
# the roles to run, e.g. `-e TRACARDI_ROLES=scheduler,mapping` (with a LICENSE that
# grants them).
ENV TRACARDI_ROLES=upgrade \
    TRACARDI_HEALTH_SOCKET=/run/tracardi-daemon/health.sock

USER tracardi

# `check` asks the daemon over its health socket and exits 0 (healthy) or 1
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s CMD ["tracardi-daemon", "check"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tracardi-daemon"]
CMD ["run"]
