"""The MotionClone daemon: a gRPC service with a durable job queue around the engine."""
