"""What camstream tells other programs: Prometheus metrics and MQTT (with Home Assistant's discovery)."""
