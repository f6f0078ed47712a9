# cronflow's daemon as a container's only process: PID 1, reaping what jobs leave behind
# (no --init needed), stopping on `docker stop` within shutdown_grace, logging to stderr
# (`docker logs`), its state on a volume. Build from this source tree:
#
#   docker build -t cronflow .
#   docker run -d --name cronflow --stop-timeout 45 \
#       -v cronflow-state:/var/lib/cronflow -v "$PWD/jobs.toml:/etc/cronflow/jobs.toml:ro" cronflow
#
# Add what your jobs need (a database client, curl, ...) to the image: they run here.
FROM python:3.12-slim

COPY . /src
RUN pip install --no-cache-dir /src && rm -rf /src

# The state directory (run log, index, locks, output) outlives the container on a volume.
ENV CRONFLOW_STATE_DIR=/var/lib/cronflow \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/cronflow

# The example runs until you mount your own jobs file over it.
COPY jobs.toml.example /etc/cronflow/jobs.toml
WORKDIR /etc/cronflow

# docker stop sends SIGTERM, then SIGKILL after --stop-timeout (10 s unless told): give it
# more than shutdown_grace (30 s by default) so running jobs are waited for and recorded.
STOPSIGNAL SIGTERM
ENTRYPOINT ["cronflow", "daemon", "--jobs", "/etc/cronflow/jobs.toml"]
