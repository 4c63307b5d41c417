"""What operators see: the Prometheus metric catalogue and the Grafana dashboards generated from it."""
