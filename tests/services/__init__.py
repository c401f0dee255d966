"""Real services that tests start on 127.0.0.1 and stop by PID (no Docker, no mocks)."""
