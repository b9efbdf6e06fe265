# Production-shaped image: the official Airflow image plus this project's pinned dependencies.
# dags/, plugins/ and include/ are mounted by docker-compose.yaml (plugins/ is on Airflow's path).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/hubspot-ledger/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" \
      -r /opt/hubspot-ledger/requirements.txt -c /opt/hubspot-ledger/constraints.txt
ENV PYTHONPATH=/opt/airflow/plugins
