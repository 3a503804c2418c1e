"""The voice agent: configuration, the server runtime, the intake conversation."""
