"""What operators watch: Prometheus metrics and OpenTelemetry traces (leaves: no
web framework, no storage, no wire models)."""
