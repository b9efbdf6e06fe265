# Production image: the official Airflow image plus the hubspot-ledger package (a wheel), its DAG
# file and its plugin module. Nothing of the development tooling (tests, tools/, pytest, ruff,
# mypy, the HubSpot SDK) enters it; .dockerignore keeps the build context to the files copied here.
#
# Dependencies: the official image ships the constraints it was built with
# (/home/airflow/constraints.txt). They win: the wheel is installed against them, so pip adds
# only what the image lacks and changes nothing it has. Our own constraints.txt pins only the
# packages the official file does not mention (the "gap" file built below).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS wheel
COPY --chown=airflow:0 pyproject.toml /tmp/src/
COPY --chown=airflow:0 plugins/hubspot_ledger /tmp/src/plugins/hubspot_ledger
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /tmp/src

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
ENV OFFICIAL_CONSTRAINTS=/home/airflow/constraints.txt
# Owned by the image's user (the RUN below runs as airflow: it writes here, then removes it all).
COPY --from=wheel --chown=airflow:0 /tmp/dist/ /tmp/hubspot-ledger-dist/
COPY --chown=airflow:0 constraints.txt /tmp/hubspot-ledger-constraints.txt
# Names are compared normalised (PEP 503: case, "-", "_", "." alike; extras dropped). Without an
# official file (another base image), our constraints apply whole.
RUN set -eu; \
    gap=/tmp/hubspot-ledger-gap-constraints.txt; \
    if [ -f "${OFFICIAL_CONSTRAINTS}" ]; then \
      awk 'function norm(s) { s = tolower(s); sub(/\[.*/, "", s); gsub(/[-_.]+/, "-", s); return s } \
           /^[[:space:]]*(#|$)/ { next } \
           { split($0, part, /[=<>!~ ;]/); name = norm(part[1]) } \
           FILENAME == ARGV[1] { official[name] = 1; next } \
           !(name in official)' \
        "${OFFICIAL_CONSTRAINTS}" /tmp/hubspot-ledger-constraints.txt > "${gap}"; \
      set -- --constraint "${OFFICIAL_CONSTRAINTS}" --constraint "${gap}"; \
    else \
      set -- --constraint /tmp/hubspot-ledger-constraints.txt; \
    fi; \
    pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "$@" \
      /tmp/hubspot-ledger-dist/hubspot_ledger-*.whl; \
    pip check; \
    command -v hubspot-ledger; \
    rm -rf /tmp/hubspot-ledger-*

# The DAG file and the plugin module import the installed package; the dags and plugins folders
# are Airflow's defaults under AIRFLOW_HOME (/opt/airflow).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/hubspot_ledger_plugin.py /opt/airflow/plugins/hubspot_ledger_plugin.py

# Writable state of the deployment (the DAG factory's last known integrations). Created here,
# owned by the image's user (airflow, uid 50000, gid 0), so that a fresh named volume mounted on
# it starts with this owner; airflow-init also hands an older volume over (docker-compose.yaml).
ENV HUBSPOT_LEDGER_STATE_DIR=/opt/airflow/state
RUN mkdir -p /opt/airflow/state && chmod 2775 /opt/airflow/state
