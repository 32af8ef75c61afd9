"""Algorithm adapters: build a model, drive its training one environment step at a time,
capture and restore its full state."""
