"""Endpoint tests of the Airflow plugin, through a real api-server."""
