"""The project's error family. Bad *data* is never an exception: it is a dead letter."""


class SpymasterError(Exception):
    """Base of every error Spymaster raises on purpose."""


class ConfigError(SpymasterError):
    """Configuration that cannot work; the message is one sentence naming the value and the fix."""


class SourceError(SpymasterError):
    """An input that cannot be opened at all (missing file, unreachable broker)."""


class SinkError(SpymasterError):
    """An output that cannot be written (lake not reachable, schema mismatch)."""
